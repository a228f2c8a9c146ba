//! The music of a synthetic dance: a drum pattern and notes on a beat grid,
//! and a sample-exact renderer for them.

use std::f64::consts::TAU;

use super::{SplitMix64, Style};

/// Silence before the first beat, so the first onset is not at sample 0.
const LEAD_IN_S: f64 = 0.5;

/// Longest sound any hit makes, in seconds; hits are rendered this far.
const MAX_RING_S: f64 = 0.6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrumKind {
    Kick,
    Snare,
    HiHat,
}

/// One sound event; `start` is a sample index, so onset times are exact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hit {
    Drum { start: u64, kind: DrumKind, velocity: f32 },
    Note { start: u64, frequency: f64, length_s: f64, velocity: f32 },
}

impl Hit {
    pub fn start(&self) -> u64 {
        match *self {
            Hit::Drum { start, .. } | Hit::Note { start, .. } => start,
        }
    }
}

/// A composed piece: its beats and every hit.
#[derive(Clone, Debug)]
pub struct Score {
    pub sample_rate: u32,
    pub beat_times: Vec<f64>,
    pub hits: Vec<Hit>,
    /// Seed of the noise used by snares and hi-hats.
    noise_seed: u64,
}

impl Score {
    pub(super) fn compose(
        style: Style,
        tempo_bpm: f64,
        meter: u32,
        swing: f64,
        duration_s: f64,
        sample_rate: u32,
        rng: &mut SplitMix64,
    ) -> Score {
        let beat_s = 60.0 / tempo_bpm;
        let sr = sample_rate as f64;
        let at = |t: f64| (t * sr).round() as u64;
        // Hits must ring out inside the file, so nothing starts in the last MAX_RING_S.
        let last_start = duration_s - MAX_RING_S;
        let scale = minor_pentatonic(rng.range(110.0, 220.0));
        let mut beat_times = Vec::new();
        let mut hits = Vec::new();
        let mut beat = 0usize;
        loop {
            let t = LEAD_IN_S + beat as f64 * beat_s;
            if t > last_start {
                break;
            }
            // Beat times are rounded to the sample they are rendered at.
            beat_times.push(at(t) as f64 / sr);
            let in_bar = beat % meter as usize;
            for half in 0..2 {
                // The off-beat eighth is delayed by `swing` of an eighth note.
                let offset = if half == 0 { 0.0 } else { 0.5 * beat_s * (1.0 + swing) };
                if t + offset > last_start {
                    continue;
                }
                let start = at(t + offset);
                for kind in drum_pattern(style, meter, 2 * in_bar + half) {
                    let velocity = if in_bar == 0 && half == 0 { 1.0 } else { 0.8 };
                    hits.push(Hit::Drum { start, kind, velocity });
                }
                if let Some((degree, length_beats)) = note_pattern(style, in_bar, half, rng) {
                    let frequency = scale[degree % scale.len()] * if degree >= scale.len() { 2.0 } else { 1.0 };
                    hits.push(Hit::Note { start, frequency, length_s: length_beats * beat_s, velocity: 0.7 });
                }
            }
            beat += 1;
        }
        hits.sort_by_key(Hit::start);
        Score { sample_rate, beat_times, hits, noise_seed: rng.next_u64() }
    }

    /// Start times (s) of all hits, one per distinct sample.
    pub fn onset_times(&self) -> Vec<f64> {
        let mut starts: Vec<u64> = self.hits.iter().map(Hit::start).collect();
        starts.dedup();
        starts.into_iter().map(|s| s as f64 / self.sample_rate as f64).collect()
    }

    /// Renders `len` samples, mono, peak at most 0.9.
    pub fn render(&self, len: usize) -> Vec<f32> {
        let mut out = vec![0f32; len];
        let mut noise = SplitMix64::new(self.noise_seed);
        let sr = self.sample_rate as f64;
        for hit in &self.hits {
            let start = hit.start() as usize;
            if start >= len {
                continue;
            }
            let ring = ((MAX_RING_S * sr) as usize).min(len - start);
            let dst = &mut out[start..start + ring];
            match *hit {
                Hit::Drum { kind, velocity, .. } => drum(kind, velocity, sr, &mut noise, dst),
                Hit::Note { frequency, length_s, velocity, .. } => note(frequency, length_s, velocity, sr, dst),
            }
        }
        let peak = out.iter().fold(0f32, |m, x| m.max(x.abs()));
        if peak > 0.9 {
            out.iter_mut().for_each(|x| *x *= 0.9 / peak);
        }
        out
    }
}

/// Drums played on eighth `eighth` of the bar (two per beat).
fn drum_pattern(style: Style, meter: u32, eighth: usize) -> Vec<DrumKind> {
    use DrumKind::*;
    let on_beat = eighth.is_multiple_of(2);
    let beat = eighth / 2;
    // Backbeat: beats 2 and 4 of a four-beat bar; every beat but the first otherwise.
    let backbeat = on_beat && if meter == 4 { beat % 2 == 1 } else { beat > 0 };
    let mut kit = Vec::new();
    match style {
        Style::Hiphop => {
            if eighth == 0 || eighth == 5 {
                kit.push(Kick);
            }
            if backbeat {
                kit.push(Snare);
            }
            kit.push(HiHat);
        }
        Style::House => {
            if on_beat {
                kit.push(Kick);
            } else {
                kit.push(HiHat);
            }
            if backbeat {
                kit.push(Snare);
            }
        }
        Style::Waltz => {
            if eighth == 0 {
                kit.push(Kick);
            } else if on_beat {
                kit.push(Snare);
            }
        }
        Style::Ballet => {}
        Style::Breaking => {
            if eighth == 0 || eighth == 3 || eighth == 5 {
                kit.push(Kick);
            }
            if backbeat {
                kit.push(Snare);
            }
            kit.push(HiHat);
        }
    }
    kit
}

/// A note (scale degree, length in beats) on this eighth, if the style plays one.
fn note_pattern(style: Style, in_bar: usize, half: usize, rng: &mut SplitMix64) -> Option<(usize, f64)> {
    let degree = (rng.unit() * 10.0) as usize;
    match (style, in_bar, half) {
        // Ballet carries its pulse in the melody: a note on every beat.
        (Style::Ballet, _, 0) => Some((degree, 0.9)),
        // Others: a bass note on each downbeat.
        (_, 0, 0) => Some((degree % 5, 0.5)),
        _ => None,
    }
}

/// Five notes of a minor pentatonic scale from `root` Hz.
fn minor_pentatonic(root: f64) -> [f64; 5] {
    [0, 3, 5, 7, 10].map(|semitones| root * 2f64.powf(semitones as f64 / 12.0))
}

fn drum(kind: DrumKind, velocity: f32, sr: f64, noise: &mut SplitMix64, dst: &mut [f32]) {
    let mut phase = 0.0f64;
    let mut previous_noise = 0f32;
    for (n, y) in dst.iter_mut().enumerate() {
        let t = n as f64 / sr;
        let value = match kind {
            DrumKind::Kick => {
                // A sine sweeping from 150 Hz down to 50 Hz.
                phase += TAU * (50.0 + 100.0 * (-t / 0.03).exp()) / sr;
                0.9 * phase.sin() * (-t / 0.15).exp()
            }
            DrumKind::Snare => {
                let tone = (TAU * 180.0 * t).sin() * (-t / 0.05).exp();
                0.5 * noise.signed() as f64 * (-t / 0.08).exp() + 0.3 * tone
            }
            DrumKind::HiHat => {
                // First difference of white noise: energy at the top of the spectrum.
                let white = noise.signed();
                let high = white - previous_noise;
                previous_noise = white;
                0.2 * high as f64 * (-t / 0.02).exp()
            }
        };
        *y += velocity * value as f32;
    }
}

fn note(frequency: f64, length_s: f64, velocity: f32, sr: f64, dst: &mut [f32]) {
    let attack_s = 0.005;
    let release_s = 0.05;
    for (n, y) in dst.iter_mut().enumerate() {
        let t = n as f64 / sr;
        if t > length_s + release_s {
            break;
        }
        let envelope =
            (t / attack_s).min(1.0) * (-t / 0.4).exp() * ((length_s + release_s - t) / release_s).clamp(0.0, 1.0);
        let tone: f64 = (1..=4).map(|h| (TAU * frequency * h as f64 * t).sin() / h as f64).sum();
        *y += velocity * (0.2 * envelope * tone) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(style: Style, swing: f64) -> Score {
        Score::compose(style, 120.0, 4, swing, 6.0, 16_000, &mut SplitMix64::new(5))
    }

    #[test]
    fn every_onset_is_audible_and_silence_precedes_it() {
        for style in Style::ALL {
            let s = score(style, 0.0);
            let audio = s.render(6 * 16_000);
            assert!(audio[..(LEAD_IN_S * 16_000.0) as usize - 1].iter().all(|&x| x == 0.0));
            for t in s.onset_times() {
                let i = (t * 16_000.0) as usize;
                let energy: f32 = audio[i..i + 160].iter().map(|x| x * x).sum();
                assert!(energy > 1e-2, "{style}: onset at {t} is silent");
            }
            assert!(audio.iter().all(|x| x.abs() <= 0.9 + 1e-6));
        }
    }

    #[test]
    fn notes_sound_at_their_pitch_for_their_length() {
        let hits = vec![Hit::Note { start: 1600, frequency: 200.0, length_s: 0.3, velocity: 1.0 }];
        let audio = Score { sample_rate: 16_000, beat_times: vec![0.1], hits, noise_seed: 0 }.render(16_000);
        // The fundamental dominates: 200 Hz crosses zero 400 times a second.
        let body = &audio[1700..1700 + 3200];
        let crossings = body.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as f64 / 0.2 - 400.0).abs() < 30.0, "{crossings} crossings in 0.2 s");
        // Silent before its start, and after its length plus the 50 ms release.
        assert!(audio[..1600].iter().all(|&x| x == 0.0));
        assert!(audio[1600 + (0.36 * 16_000.0) as usize..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn swing_delays_only_the_off_beat() {
        let (straight, swung) = (score(Style::Hiphop, 0.0), score(Style::Hiphop, 1.0 / 3.0));
        assert_eq!(straight.beat_times, swung.beat_times);
        let beat = straight.beat_times[0];
        // At 120 bpm the straight off-beat is 0.25 s after the beat, the triplet one 1/3 s.
        let first_after = |s: &Score| s.onset_times().into_iter().find(|&t| t > beat + 1e-6).unwrap() - beat;
        assert!((first_after(&straight) - 0.25).abs() < 1e-4);
        assert!((first_after(&swung) - 1.0 / 3.0).abs() < 1e-4);
    }

    #[test]
    fn ballet_has_notes_only_and_waltz_three_beats() {
        assert!(score(Style::Ballet, 0.0).hits.iter().all(|h| matches!(h, Hit::Note { .. })));
        let waltz = Score::compose(Style::Waltz, 90.0, 3, 0.0, 6.0, 16_000, &mut SplitMix64::new(1));
        let kicks = waltz.hits.iter().filter(|h| matches!(h, Hit::Drum { kind: DrumKind::Kick, .. })).count();
        assert_eq!(kicks, waltz.beat_times.len().div_ceil(3));
    }
}
