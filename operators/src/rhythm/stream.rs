//! The streaming form of the onset envelope and onset detection: audio in
//! chunks of any size, each envelope frame out as soon as the sample at its
//! centre has arrived, state bounded per stream.
//!
//! Where librosa's per-clip definition needs the whole signal, the stream
//! uses what it has seen so far:
//! - `power_to_db`'s `top_db` clamp uses the running maximum, not the clip's
//!   (identical once the loudest frame has passed, and wherever the clamp
//!   does not bind, i.e. the clip spans less than `top_db` dB);
//! - `onset_detect` normalises the envelope by its running maximum, so a frame
//!   is judged against the loudest flux so far: decisions are identical from
//!   the clip's loudest onset on. Each decision waits for `post_avg − 1`
//!   (at 16 kHz: 3) frames of look-ahead.
//!
//! Tempo and beats need the whole clip (the DP backtracks from the end); the
//! graph computes them per clip with [`super::analyze`].

use std::collections::VecDeque;

use super::mel::{MelFilterbank, power_to_db_unclamped};
use super::onset::{PeakPicker, envelope_delay, spectral_flux};
use super::stft::{Frames, StftStream};
use super::{DbParams, OnsetParams, PeakPickParams, RhythmError, RhythmParams, SpectrogramParams, check_finite};

/// One envelope frame, emitted once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamedFrame {
    pub index: usize,
    pub envelope: f32,
}

/// What one push produced: new envelope frames, and onsets decided meanwhile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamOutput {
    pub frames: Vec<StreamedFrame>,
    pub onsets: Vec<usize>,
}

/// Onset envelope and onsets of one audio stream, incrementally.
#[derive(Clone, Debug)]
pub struct OnsetStream {
    spec: SpectrogramParams,
    db: DbParams,
    onset: OnsetParams,
    stft: StftStream,
    filters: MelFilterbank,
    power: Frames,
    /// Unclamped dB mel frames still needed as references (the last `lag`).
    history: VecDeque<Vec<f32>>,
    max_db: f32,
    next_index: usize,
    samples_seen: usize,
    picker: PeakPicker,
}

impl OnsetStream {
    pub fn new(params: &RhythmParams) -> Result<OnsetStream, RhythmError> {
        let spec = params.spectrogram;
        spec.validate()?;
        let peaks = params.peaks.unwrap_or(PeakPickParams::onset_detect_defaults(spec.sr, spec.hop_length));
        let stft = StftStream::new(spec.n_fft, spec.hop_length);
        Ok(OnsetStream {
            db: params.db,
            onset: OnsetParams { lag: params.onset.lag.max(1), ..params.onset },
            power: Frames::new(stft.n_bins()),
            stft,
            filters: spec.filterbank(),
            history: VecDeque::new(),
            max_db: f32::NEG_INFINITY,
            next_index: 0,
            samples_seen: 0,
            picker: PeakPicker::normalizing(peaks),
            spec,
        })
    }

    /// Adds samples (any number); returns the frames and onsets they complete.
    pub fn push(&mut self, samples: &[f32]) -> Result<StreamOutput, RhythmError> {
        check_finite(samples).map_err(|e| match e {
            RhythmError::NotFinite { index, value } => {
                RhythmError::NotFinite { index: self.samples_seen + index, value }
            }
            other => other,
        })?;
        self.samples_seen += samples.len();
        self.power.data.clear();
        self.stft.push(samples, &mut self.power);
        Ok(self.process(usize::MAX))
    }

    /// Ends the stream: the last frames (librosa's length, `1 + n / hop`) and
    /// the remaining onset decisions.
    pub fn finish(&mut self) -> StreamOutput {
        self.power.data.clear();
        self.stft.finish(&mut self.power);
        let total = super::stft::frame_count(self.samples_seen, self.spec.hop_length);
        let mut out = self.process(total);
        out.onsets.extend(self.picker.finish());
        out
    }

    fn process(&mut self, total: usize) -> StreamOutput {
        let mut out = StreamOutput::default();
        let delay = envelope_delay(&self.spec, &self.onset);
        // Leading zeros: the envelope starts `delay` frames late.
        while self.next_index < delay.min(total) {
            self.emit(0.0, &mut out);
        }
        let frames = std::mem::take(&mut self.power);
        for power in frames.iter() {
            let mut mel = vec![0f32; self.filters.n_mels()];
            self.filters.apply(power, &mut mel);
            power_to_db_unclamped(&mut mel, &self.db);
            self.max_db = mel.iter().copied().fold(self.max_db, f32::max);
            if self.history.len() == self.onset.lag {
                let reference = self.history.pop_front().expect("lag frames of history");
                if self.next_index < total {
                    let value = spectral_flux(
                        &self.clamp(&mel),
                        &self.clamp(&reference),
                        self.onset.max_size,
                        self.onset.aggregate,
                    );
                    self.emit(value, &mut out);
                }
            }
            self.history.push_back(mel);
        }
        self.power = frames;
        out
    }

    /// How many envelope frames have their onset decision.
    pub fn decided(&self) -> usize {
        self.picker.decided()
    }

    fn clamp(&self, frame: &[f32]) -> Vec<f32> {
        match self.db.top_db {
            Some(top_db) => frame.iter().map(|&v| v.max(self.max_db - top_db)).collect(),
            None => frame.to_vec(),
        }
    }

    fn emit(&mut self, envelope: f32, out: &mut StreamOutput) {
        out.frames.push(StreamedFrame { index: self.next_index, envelope });
        out.onsets.extend(self.picker.push(envelope));
        self.next_index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rhythm::{analyze, onset};

    fn clicks(n: usize) -> Vec<f32> {
        (0..n).map(|i| if i % 7000 < 40 { 0.8 * ((i % 7000) as f32 * 0.9).sin() } else { 0.0 }).collect()
    }

    fn streamed(y: &[f32], chunk: usize, params: &RhythmParams) -> (Vec<f32>, Vec<usize>) {
        let mut stream = OnsetStream::new(params).unwrap();
        let mut out = StreamOutput::default();
        for c in y.chunks(chunk.max(1)) {
            let o = stream.push(c).unwrap();
            out.frames.extend(o.frames);
            out.onsets.extend(o.onsets);
        }
        let o = stream.finish();
        out.frames.extend(o.frames);
        out.onsets.extend(o.onsets);
        assert!(out.frames.iter().enumerate().all(|(i, f)| f.index == i), "frames in order, once each");
        (out.frames.iter().map(|f| f.envelope).collect(), out.onsets)
    }

    #[test]
    fn without_the_clamp_streaming_equals_per_clip() {
        let y = clicks(40_000);
        let params = RhythmParams { db: DbParams { top_db: None, ..Default::default() }, ..Default::default() };
        let clip = analyze(&y, &params).unwrap();
        for chunk in [1, 100, 512, 4096, 40_000] {
            let (envelope, _) = streamed(&y, chunk, &params);
            assert_eq!(envelope, clip.onset_envelope, "chunk {chunk}");
        }
        let mel = onset::mel_db(&y, &params.spectrogram, &params.db);
        assert_eq!(mel.len(), clip.onset_envelope.len());
    }

    #[test]
    fn nan_is_an_error_with_its_position() {
        let mut stream = OnsetStream::new(&RhythmParams::default()).unwrap();
        stream.push(&[0.0; 10]).unwrap();
        let err = stream.push(&[0.0, f32::INFINITY]).unwrap_err();
        assert_eq!(err, RhythmError::NotFinite { index: 11, value: f32::INFINITY });
    }

    /// A click track with random period, level and noise floor.
    fn signal(period: usize, level: f32, noise: f32, seed: u64, n: usize) -> Vec<f32> {
        let mut rng = crate::synth::SplitMix64::new(seed);
        (0..n)
            .map(|i| {
                let click = if i % period < 60 { level * ((i % period) as f32 * 0.7).sin() } else { 0.0 };
                click + noise * rng.signed()
            })
            .collect()
    }

    /// Splits `n` samples into chunks of the given sizes, cycling.
    fn chunked(y: &[f32], sizes: &[usize]) -> Vec<Vec<f32>> {
        let (mut out, mut at, mut k) = (Vec::new(), 0, 0);
        while at < y.len() {
            let size = sizes[k % sizes.len()].min(y.len() - at);
            out.push(y[at..at + size].to_vec());
            (at, k) = (at + size, k + 1);
        }
        out
    }

    fn stream_chunks(chunks: &[Vec<f32>], params: &RhythmParams) -> (Vec<f32>, Vec<usize>) {
        let mut stream = OnsetStream::new(params).unwrap();
        let (mut envelope, mut onsets) = (Vec::new(), Vec::new());
        let mut outputs: Vec<StreamOutput> = chunks.iter().map(|c| stream.push(c).unwrap()).collect();
        outputs.push(stream.finish());
        for out in outputs {
            envelope.extend(out.frames.iter().map(|f| f.envelope));
            onsets.extend(out.onsets);
        }
        (envelope, onsets)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Any chunking streams the per-clip envelope exactly where the clamp
        /// cannot differ, and the per-clip onsets from the loudest flux on.
        #[test]
        fn chunked_streaming_equals_per_clip(
            period in 3000usize..12_000,
            level in 0.05f32..1.0,
            noise in 0.0f32..0.05,
            seed in 0u64..1000,
            n in 2000usize..60_000,
            sizes in proptest::collection::vec(1usize..5000, 1..6),
        ) {
            let y = signal(period, level, noise, seed, n);
            let chunks = chunked(&y, &sizes);
            for top_db in [None, Some(80.0)] {
                let params = RhythmParams { db: DbParams { top_db, ..Default::default() }, ..Default::default() };
                let clip = analyze(&y, &params).unwrap();
                let (envelope, onsets) = stream_chunks(&chunks, &params);
                proptest::prop_assert_eq!(envelope.len(), clip.onset_envelope.len());
                // Where the clamp binds, frames agree once the loudest dB value has been seen.
                let settled = match top_db {
                    None => 0,
                    Some(_) => {
                        let mel = onset::mel_db(&y, &params.spectrogram, &DbParams { top_db: None, ..Default::default() });
                        let loudest = (0..mel.len()).max_by(|&a, &b| {
                            let max = |t: usize| mel.frame(t).iter().copied().fold(f32::NEG_INFINITY, f32::max);
                            max(a).total_cmp(&max(b))
                        }).unwrap();
                        loudest + onset::envelope_delay(&params.spectrogram, &params.onset)
                    }
                };
                proptest::prop_assert_eq!(&envelope[settled.min(envelope.len())..], &clip.onset_envelope[settled.min(envelope.len())..]);
                // Onset decisions agree once the running maximum is the clip's maximum.
                let argmax = (0..envelope.len()).max_by(|&a, &b| clip.onset_envelope[a].total_cmp(&clip.onset_envelope[b]).then(b.cmp(&a))).unwrap_or(0);
                let from = argmax.max(settled).saturating_sub(3);
                let tail = |o: &[usize]| o.iter().copied().filter(|&f| f >= from).collect::<Vec<_>>();
                if top_db.is_none() {
                    proptest::prop_assert_eq!(tail(&onsets), tail(&clip.onset_frames));
                }
            }
        }
    }
}
