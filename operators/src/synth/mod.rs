//! Synthetic dance media with known ground truth.
//!
//! A [`Dance`] is a generated music track (drums and notes on a beat grid with
//! a tempo, meter and swing) and a figure whose moves land on the music's
//! accents. Everything derives from [`SynthConfig`] and is deterministic for a
//! seed: the same configuration renders the same samples and the same pixels.
//!
//! The figure moves from one key pose to the next with an accelerating ease
//! (`u²`) and stops dead on the accent, so each visual accent is a sharp
//! deceleration of the limbs: the kind of impact that visual-beat detectors
//! (Davis & Agrawala 2018) and the paper's visual rhythm (Sec. 3.1.2) look for.
//!
//! Encoding into real container files is the job of `mudar-sinks`.

mod dancer;
mod music;

use serde::{Deserialize, Serialize};

pub use dancer::{Pose, Skeleton};
pub use music::{DrumKind, Hit, Score};

/// A dance style: it sets the default tempo and meter, the drum pattern, which
/// beats the dancer accents and how large the moves are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Boom-bap: kick on 1 and the "and" of 3, snare on 2 and 4, eighth hats; a move on every beat.
    Hiphop,
    /// Four on the floor, off-beat hats; a move on every beat.
    House,
    /// 3/4, kick on 1, snare on 2 and 3; a move on every beat.
    Waltz,
    /// No drums, a note on every beat; a slow move every second beat.
    Ballet,
    /// Breakbeat with syncopated kicks; moves on every beat, large.
    Breaking,
}

impl Style {
    pub const ALL: [Style; 5] = [Style::Hiphop, Style::House, Style::Waltz, Style::Ballet, Style::Breaking];

    pub fn name(self) -> &'static str {
        match self {
            Style::Hiphop => "hiphop",
            Style::House => "house",
            Style::Waltz => "waltz",
            Style::Ballet => "ballet",
            Style::Breaking => "breaking",
        }
    }

    /// Index of the style in [`Style::ALL`]: a class label for classification tests.
    pub fn label(self) -> u32 {
        Style::ALL.iter().position(|&s| s == self).unwrap() as u32
    }

    pub fn default_tempo_bpm(self) -> f64 {
        match self {
            Style::Hiphop => 92.0,
            Style::House => 124.0,
            Style::Waltz => 96.0,
            Style::Ballet => 72.0,
            Style::Breaking => 110.0,
        }
    }

    /// The style's typical tempo moved by `seed` to a whole BPM within ±15%
    /// of it. Drawn from its own stream, so the seed's other draws (score,
    /// poses, backdrop) do not depend on it.
    pub fn tempo_for_seed(self, seed: u64) -> f64 {
        let jitter = SplitMix64::new(seed ^ 0x7E3D_0B9A_1C52_F4E6).range(-0.15, 0.15);
        (self.default_tempo_bpm() * (1.0 + jitter)).round()
    }

    pub fn default_meter(self) -> u32 {
        match self {
            Style::Waltz => 3,
            _ => 4,
        }
    }

    /// Beats between two visual accents.
    fn beats_per_accent(self) -> usize {
        match self {
            Style::Ballet => 2,
            _ => 1,
        }
    }
}

impl std::str::FromStr for Style {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Style::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| {
            let names: Vec<_> = Style::ALL.iter().map(|s| s.name()).collect();
            format!("unknown style {s:?} (expected one of: {})", names.join(", "))
        })
    }
}

impl std::fmt::Display for Style {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a synthetic dance depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    pub style: Style,
    /// Quarter notes per minute; `None` takes the style's typical tempo,
    /// moved by the seed to a whole BPM within ±15% of it
    /// ([`Style::tempo_for_seed`]), so that dances of one style differ in tempo.
    pub tempo_bpm: Option<f64>,
    /// Beats per bar; `None` takes the style's default.
    pub meter: Option<u32>,
    /// Delay of the off-beat eighth, as a fraction of an eighth note: 0 is
    /// straight, 1/3 is triplet swing. In `[0, 0.75]`.
    pub swing: f64,
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub sample_rate: u32,
    pub seed: u64,
    /// Dance to the music of this seed (the score `seed: music_seed` composes, the style and
    /// tempo options being equal) instead of the seed's own: several dancers to one song,
    /// the ground truth of music-to-dance retrieval. The dancer (key poses, backdrop) is
    /// still the seed's.
    #[serde(default)]
    pub music_seed: Option<u64>,
}

/// Salt of a dancer's draws when its music is another seed's.
const DANCER_STREAM: u64 = 0x5EED_DA4C_E000_0001;

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            style: Style::Hiphop,
            tempo_bpm: None,
            meter: None,
            swing: 0.0,
            duration_s: 10.0,
            width: 320,
            height: 240,
            fps: 24,
            sample_rate: 44_100,
            seed: 0,
            music_seed: None,
        }
    }
}

/// Why a [`SynthConfig`] cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SynthError {
    #[error("tempo must be in [20, 400] bpm, got {0}")]
    Tempo(f64),
    #[error("meter must be in [1, 16] beats per bar, got {0}")]
    Meter(u32),
    #[error("swing must be in [0, 0.75], got {0}")]
    Swing(f64),
    #[error("duration must be in (0, 86400] seconds, got {0}")]
    Duration(f64),
    #[error("frame size must be even and in [16, 4096], got {0}x{1}")]
    Size(u32, u32),
    #[error("frame rate must be in [1, 240] fps, got {0}")]
    Fps(u32),
    #[error("sample rate must be in [8000, 192000] Hz, got {0}")]
    SampleRate(u32),
}

/// The ground truth written beside each synthetic file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub style: Style,
    pub style_label: u32,
    pub seed: u64,
    /// The seed whose music this dance is to, when not its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub music_seed: Option<u64>,
    pub tempo_bpm: f64,
    pub meter: u32,
    pub swing: f64,
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub sample_rate: u32,
    /// Times (s) of every beat (quarter note).
    pub beat_times: Vec<f64>,
    /// Times (s) of the first beat of each bar.
    pub downbeat_times: Vec<f64>,
    /// Times (s) where any sound starts (drum hit or note), simultaneous ones merged.
    pub onset_times: Vec<f64>,
    /// Times (s) where the dancer's move lands (limbs stop dead).
    pub visual_accent_times: Vec<f64>,
}

/// A synthetic dance: the score, the choreography, and renderers for both.
#[derive(Clone, Debug)]
pub struct Dance {
    config: SynthConfig,
    tempo_bpm: f64,
    meter: u32,
    score: Score,
    skeleton: Skeleton,
    accents: Vec<f64>,
    key_poses: Vec<Pose>,
    background: Vec<u8>,
}

impl Dance {
    pub fn new(config: SynthConfig) -> Result<Dance, SynthError> {
        let music_seed = config.music_seed.unwrap_or(config.seed);
        let tempo_bpm = config.tempo_bpm.unwrap_or(config.style.tempo_for_seed(music_seed));
        let meter = config.meter.unwrap_or(config.style.default_meter());
        validate(&config, tempo_bpm, meter)?;
        let mut rng = SplitMix64::new(music_seed);
        let score = Score::compose(
            config.style,
            tempo_bpm,
            meter,
            config.swing,
            config.duration_s,
            config.sample_rate,
            &mut rng,
        );
        // A seed dancing to its own music draws on from where the score stopped (so seeds
        // render as they always did); to another's, from a stream of its own.
        if config.music_seed.is_some() {
            rng = SplitMix64::new(config.seed ^ DANCER_STREAM);
        }
        let accents: Vec<f64> = score.beat_times.iter().copied().step_by(config.style.beats_per_accent()).collect();
        let key_poses = (0..=accents.len()).map(|_| Pose::random(config.style, &mut rng)).collect();
        let skeleton = Skeleton::for_frame(config.width, config.height);
        let background = dancer::render_background(config.width, config.height, &mut rng);
        Ok(Dance { config, tempo_bpm, meter, score, skeleton, accents, key_poses, background })
    }

    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    pub fn score(&self) -> &Score {
        &self.score
    }

    /// Number of video frames: every frame whose start lies inside the duration.
    pub fn frame_count(&self) -> u64 {
        (self.config.duration_s * self.config.fps as f64).ceil() as u64
    }

    /// Number of audio samples covering the duration.
    pub fn sample_count(&self) -> u64 {
        (self.config.duration_s * self.config.sample_rate as f64).round() as u64
    }

    pub fn ground_truth(&self) -> GroundTruth {
        let c = &self.config;
        GroundTruth {
            style: c.style,
            style_label: c.style.label(),
            seed: c.seed,
            music_seed: c.music_seed,
            tempo_bpm: self.tempo_bpm,
            meter: self.meter,
            swing: c.swing,
            duration_s: c.duration_s,
            width: c.width,
            height: c.height,
            fps: c.fps,
            sample_rate: c.sample_rate,
            beat_times: self.score.beat_times.clone(),
            downbeat_times: self.score.beat_times.iter().copied().step_by(self.meter as usize).collect(),
            onset_times: self.score.onset_times(),
            visual_accent_times: self.accents.clone(),
        }
    }

    /// The whole mono track, `sample_count()` samples at `sample_rate`.
    pub fn render_audio(&self) -> Vec<f32> {
        self.score.render(self.sample_count() as usize)
    }

    /// The dancer's pose at time `t` seconds.
    pub fn pose_at(&self, t: f64) -> Pose {
        let next = self.accents.partition_point(|&a| a <= t);
        if next == 0 || next == self.accents.len() {
            // Still before the first accent, or holding after the last one.
            return self.key_poses[next];
        }
        let (a0, a1) = (self.accents[next - 1], self.accents[next]);
        let u = (t - a0) / (a1 - a0);
        // Accelerate into the accent and stop dead on it.
        self.key_poses[next - 1].lerp(&self.key_poses[next], u * u)
    }

    /// Frame `index` as packed RGB (`width * height * 3` bytes).
    pub fn render_frame(&self, index: u64) -> Vec<u8> {
        let t = index as f64 / self.config.fps as f64;
        let mut rgb = self.background.clone();
        self.skeleton.draw(&self.pose_at(t), self.config.style, self.config.width, self.config.height, &mut rgb);
        rgb
    }
}

fn validate(c: &SynthConfig, tempo_bpm: f64, meter: u32) -> Result<(), SynthError> {
    if !(20.0..=400.0).contains(&tempo_bpm) {
        return Err(SynthError::Tempo(tempo_bpm));
    }
    if !(1..=16).contains(&meter) {
        return Err(SynthError::Meter(meter));
    }
    if !(0.0..=0.75).contains(&c.swing) {
        return Err(SynthError::Swing(c.swing));
    }
    if !(c.duration_s > 0.0 && c.duration_s <= 86_400.0) {
        return Err(SynthError::Duration(c.duration_s));
    }
    let size_ok = |v: u32| (16..=4096).contains(&v) && v.is_multiple_of(2);
    if !size_ok(c.width) || !size_ok(c.height) {
        return Err(SynthError::Size(c.width, c.height));
    }
    if !(1..=240).contains(&c.fps) {
        return Err(SynthError::Fps(c.fps));
    }
    if !(8000..=192_000).contains(&c.sample_rate) {
        return Err(SynthError::SampleRate(c.sample_rate));
    }
    Ok(())
}

/// SplitMix64 (Steele et al. 2014): tiny, fast, and stable across releases,
/// so a seed renders the same media forever.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `[-1, 1)`, for noise.
    pub fn signed(&mut self) -> f32 {
        (2.0 * self.unit() - 1.0) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dance(style: Style, seed: u64) -> Dance {
        Dance::new(SynthConfig { style, seed, duration_s: 4.0, width: 64, height: 48, fps: 8, ..Default::default() })
            .unwrap()
    }

    #[test]
    fn same_seed_same_media() {
        let (a, b) = (dance(Style::House, 7), dance(Style::House, 7));
        assert_eq!(a.render_audio(), b.render_audio());
        assert_eq!(a.render_frame(13), b.render_frame(13));
        assert_eq!(a.ground_truth(), b.ground_truth());
        assert_ne!(a.render_frame(13), dance(Style::House, 8).render_frame(13));
    }

    #[test]
    fn dancers_share_a_song_by_its_seed() {
        let to = |seed, music| {
            let config = SynthConfig { music_seed: Some(music), ..dance(Style::Waltz, seed).config().clone() };
            Dance::new(config).unwrap()
        };
        let (song, first, second) = (dance(Style::Waltz, 3), to(10, 3), to(11, 3));
        for other in [&first, &second] {
            assert_eq!(other.render_audio(), song.render_audio());
            assert_eq!(other.ground_truth().beat_times, song.ground_truth().beat_times);
            assert_eq!(other.ground_truth().visual_accent_times, song.ground_truth().visual_accent_times);
        }
        // Other dancers: other key poses and backdrops.
        assert_ne!(first.render_frame(13), second.render_frame(13));
        assert_ne!(first.render_frame(13), song.render_frame(13));
        assert_eq!(first.ground_truth().music_seed, Some(3));
    }

    #[test]
    fn beats_follow_the_tempo() {
        let gt = dance(Style::Hiphop, 1).ground_truth();
        let period = 60.0 / gt.tempo_bpm;
        for pair in gt.beat_times.windows(2) {
            assert!((pair[1] - pair[0] - period).abs() < 1e-4, "{pair:?}");
        }
        assert!(gt.beat_times.iter().all(|t| (0.0..4.0).contains(t)));
        assert_eq!(gt.downbeat_times.len(), gt.beat_times.len().div_ceil(4));
    }

    #[test]
    fn seeds_move_the_tempo_around_the_style() {
        let tempi: Vec<f64> = (0..40).map(|seed| Style::House.tempo_for_seed(seed)).collect();
        assert!(tempi.iter().all(|&t| t.fract() == 0.0 && (0.85 * 124.0..=1.15 * 124.0).contains(&t)), "{tempi:?}");
        let distinct: std::collections::BTreeSet<u64> = tempi.iter().map(|&t| t as u64).collect();
        assert!(distinct.len() > 20, "{distinct:?}");
        assert_eq!(dance(Style::House, 5).ground_truth().tempo_bpm, Style::House.tempo_for_seed(5));
        let fixed = Dance::new(SynthConfig { tempo_bpm: Some(120.0), ..Default::default() }).unwrap();
        assert_eq!(fixed.ground_truth().tempo_bpm, 120.0);
    }

    #[test]
    fn limbs_stop_dead_on_accents() {
        let d = dance(Style::Breaking, 3);
        let gt = d.ground_truth();
        let eps = 1e-3;
        for &a in &gt.visual_accent_times[1..gt.visual_accent_times.len() - 1] {
            let before = d.pose_at(a - eps).distance(&d.pose_at(a - 2.0 * eps));
            let after = d.pose_at(a + 2.0 * eps).distance(&d.pose_at(a + eps));
            assert!(before > 20.0 * after, "speed before {before} after {after} at {a}");
        }
    }

    #[test]
    fn invalid_configs_are_refused() {
        let bad = |c: SynthConfig| Dance::new(c).unwrap_err();
        assert_eq!(bad(SynthConfig { tempo_bpm: Some(0.0), ..Default::default() }), SynthError::Tempo(0.0));
        assert_eq!(bad(SynthConfig { width: 33, ..Default::default() }), SynthError::Size(33, 240));
        assert!(bad(SynthConfig { duration_s: f64::NAN, ..Default::default() }).to_string().contains("duration"));
    }

    #[test]
    fn style_names_roundtrip() {
        for s in Style::ALL {
            assert_eq!(s.name().parse::<Style>().unwrap(), s);
        }
        assert!("tango".parse::<Style>().unwrap_err().contains("hiphop"));
    }
}
