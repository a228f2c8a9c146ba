//! Music rhythm, numerically as librosa 0.11 computes it (the paper's
//! explicit-pathway ground truth, Sec. 3.1.1 and 4.1; the step-by-step spec
//! is `shared/reference/librosa-rhythm-spec.md`).
//!
//! ```text
//! samples ─ stft (periodic Hann, centred) ─ |·|² ─ mel (Slaney) ─ power_to_db
//!         ─ onset strength (rectified flux, mean/median over bands)
//!             ├ onset_detect: normalise, peak_pick
//!             ├ tempogram: windowed autocorrelation
//!             └ beat_track: tempo (tempogram + log-normal prior), DP, backtrack, trim
//! ```
//!
//! Two forms of the same code: per clip ([`analyze`], identical to librosa),
//! and streaming ([`OnsetStream`]) where audio arrives in chunks of any size.

pub mod beat;
pub mod features;
pub mod mel;
pub mod onset;
pub mod stft;
pub mod stream;
pub mod tempo;

pub use beat::{BeatParams, track_beats};
pub use features::{audio_input, audio_input_width};
pub use mel::{DbParams, MelFilterbank, power_to_db};
pub use onset::{Aggregate, OnsetParams, PeakPickParams, onset_detect_from_envelope, onset_strength, peak_pick};
pub use stft::{Frames, power_spectrogram};
pub use stream::{OnsetStream, StreamedFrame};
pub use tempo::{TempoParams, Tempogram, tempo, tempogram};

/// Why audio cannot be analysed.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum RhythmError {
    #[error("audio sample {index} is {value} (NaN or infinite)")]
    NotFinite { index: usize, value: f32 },
    #[error("invalid parameter: {0}")]
    Parameter(String),
}

/// Fails on the first NaN or infinite sample.
pub fn check_finite(y: &[f32]) -> Result<(), RhythmError> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(RhythmError::NotFinite { index, value: y[index] }),
        None => Ok(()),
    }
}

/// Spectrogram parameters (librosa names and defaults at 16 kHz).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectrogramParams {
    pub sr: u32,
    pub n_fft: usize,
    pub hop_length: usize,
    pub n_mels: usize,
    pub fmin: f64,
    /// Upper edge of the mel bands; `None` is `sr / 2`.
    pub fmax: Option<f64>,
}

impl Default for SpectrogramParams {
    fn default() -> Self {
        SpectrogramParams { sr: 16_000, n_fft: 2048, hop_length: 512, n_mels: 128, fmin: 0.0, fmax: None }
    }
}

impl SpectrogramParams {
    pub fn validate(&self) -> Result<(), RhythmError> {
        let bad = |what: String| Err(RhythmError::Parameter(what));
        let nyquist = self.sr as f64 / 2.0;
        let fmax = self.fmax.unwrap_or(nyquist);
        if self.sr == 0 || self.n_fft < 2 || self.hop_length == 0 || self.n_mels == 0 {
            return bad(format!("sr, n_fft (≥ 2), hop_length and n_mels must be positive: {self:?}"));
        }
        if !(0.0 <= self.fmin && self.fmin < fmax && fmax <= nyquist) {
            return bad(format!("need 0 ≤ fmin < fmax ≤ sr/2, got fmin {} fmax {fmax}", self.fmin));
        }
        Ok(())
    }

    pub fn filterbank(&self) -> MelFilterbank {
        MelFilterbank::new(self.sr, self.n_fft, self.n_mels, self.fmin, self.fmax.unwrap_or(self.sr as f64 / 2.0))
    }

    /// Frames per second.
    pub fn frame_rate(&self) -> f64 {
        self.sr as f64 / self.hop_length as f64
    }

    /// Time (s) of frame `t`: the centre of its window.
    pub fn frame_time(&self, t: usize) -> f64 {
        (t * self.hop_length) as f64 / self.sr as f64
    }
}

/// Everything `mudar music` reports, per clip.
#[derive(Clone, Debug, PartialEq)]
pub struct MusicRhythm {
    /// `onset_strength` (mean aggregation).
    pub onset_envelope: Vec<f32>,
    /// `onset_detect` frames.
    pub onset_frames: Vec<usize>,
    /// `beat_track` tempo (BPM); 0 when the beat envelope is all zero.
    pub tempo: f64,
    /// `beat_track` frames.
    pub beat_frames: Vec<usize>,
}

/// Parameters of [`analyze`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RhythmParams {
    pub spectrogram: SpectrogramParams,
    pub db: DbParams,
    /// For the onset envelope (the beat tracker uses the same with median aggregation).
    pub onset: OnsetParams,
    /// `None`: `onset_detect`'s defaults for the frame rate.
    pub peaks: Option<PeakPickParams>,
    /// Move each onset back to the preceding minimum of the envelope (`onset_detect(backtrack=True)`).
    pub backtrack: bool,
    pub tempo: TempoParams,
    pub beat: BeatParams,
}

/// Onset envelope, onsets, tempo and beats of a clip, as librosa's
/// `onset_strength`, `onset_detect` and `beat_track` give them.
pub fn analyze(y: &[f32], params: &RhythmParams) -> Result<MusicRhythm, RhythmError> {
    analyze_with_mel(y, params).map(|(rhythm, _)| rhythm)
}

/// [`analyze`], also returning the dB mel spectrogram it was computed from.
pub fn analyze_with_mel(y: &[f32], params: &RhythmParams) -> Result<(MusicRhythm, Frames), RhythmError> {
    check_finite(y)?;
    let spec = &params.spectrogram;
    spec.validate()?;
    let mel = onset::mel_db(y, spec, &params.db);
    // The reported envelope uses the given aggregation, the beat tracker's the median.
    let [onset_envelope, beat_envelope] = match params.onset.aggregate {
        Aggregate::Mean => onset::mean_and_median_from_db(&mel, spec, &params.onset),
        Aggregate::Median => {
            let median = onset::onset_strength_from_db(&mel, spec, &params.onset);
            [median.clone(), median]
        }
    };
    let peaks = params.peaks.unwrap_or(PeakPickParams::onset_detect_defaults(spec.sr, spec.hop_length));
    let onset_frames = onset_detect_from_envelope(&onset_envelope, &peaks, params.backtrack);
    let (tempo, beat_frames) = if beat_envelope.iter().all(|&e| e == 0.0) {
        (0.0, Vec::new())
    } else {
        let bpm = tempo(&beat_envelope, spec.sr, spec.hop_length, &params.tempo);
        (bpm, track_beats(&beat_envelope, bpm, spec.frame_rate(), &params.beat))
    };
    Ok((MusicRhythm { onset_envelope, onset_frames, tempo, beat_frames }, mel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_gives_zeros_and_nothing_detected() {
        let rhythm = analyze(&[0.0; 40_000], &RhythmParams::default()).unwrap();
        assert_eq!(rhythm.onset_envelope.len(), 1 + 40_000 / 512);
        assert!(rhythm.onset_envelope.iter().all(|&e| e == 0.0));
        assert!(rhythm.onset_frames.is_empty() && rhythm.beat_frames.is_empty());
        assert_eq!(rhythm.tempo, 0.0);
    }

    #[test]
    fn not_finite_audio_is_an_error() {
        let mut y = vec![0.1f32; 5000];
        y[1234] = f32::NAN;
        let err = analyze(&y, &RhythmParams::default()).unwrap_err();
        assert!(matches!(err, RhythmError::NotFinite { index: 1234, .. }), "{err}");
        y[1234] = f32::NEG_INFINITY;
        assert!(err.to_string().contains("1234"));
        assert!(onset_strength(&y, &SpectrogramParams::default(), &OnsetParams::default()).is_err());
    }

    #[test]
    fn shorter_than_the_window_and_empty() {
        // Fewer frames than lag + 2: the envelope is all zero, as librosa's.
        let rhythm = analyze(&[0.5; 1000], &RhythmParams::default()).unwrap();
        assert_eq!(rhythm.onset_envelope, vec![0.0; 2]);
        assert!(analyze(&[], &RhythmParams::default()).unwrap().onset_envelope == vec![0.0]);
    }

    #[test]
    fn parameters_are_checked() {
        let bad = RhythmParams {
            spectrogram: SpectrogramParams { fmax: Some(9000.0), ..Default::default() },
            ..Default::default()
        };
        assert!(matches!(analyze(&[0.0; 100], &bad), Err(RhythmError::Parameter(_))));
    }
}
