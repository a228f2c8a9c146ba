//! The implicit pathway's audio input (paper Sec. 3.2 and 4.1): per frame,
//! the concatenation of the dB mel spectrogram, a beat indicator, the onset
//! envelope and the tempogram column.

use super::stft::Frames;
use super::{RhythmError, RhythmParams, analyze_with_mel, tempogram};

/// Tempogram lags in the audio input (librosa's default `win_length`).
pub const TEMPOGRAM_LAGS: usize = 384;

/// Features per frame: `n_mels + 1 + 1 + TEMPOGRAM_LAGS`.
pub fn audio_input_width(params: &RhythmParams) -> usize {
    params.spectrogram.n_mels + 2 + TEMPOGRAM_LAGS
}

/// Where the beat and onset-envelope columns lie in a row of `width`
/// features laid out as [`audio_input`] lays them: just before the tempogram.
pub fn rhythm_columns(width: usize) -> std::ops::Range<usize> {
    let beat = width - TEMPOGRAM_LAGS - 2;
    beat..beat + 2
}

/// `[mel dB (n_mels) ‖ beat (1: 1.0 on beat frames) ‖ onset envelope (1) ‖
/// tempogram column (384)]` for each STFT frame of `y`.
pub fn audio_input(y: &[f32], params: &RhythmParams) -> Result<Frames, RhythmError> {
    let (rhythm, mel) = analyze_with_mel(y, params)?;
    let tempogram = tempogram(&rhythm.onset_envelope, TEMPOGRAM_LAGS);
    let mut out = Frames::new(audio_input_width(params));
    let mut beats = rhythm.beat_frames.iter().peekable();
    for (t, mel_frame) in mel.iter().enumerate() {
        out.data.extend_from_slice(mel_frame);
        let on_beat = beats.next_if_eq(&&t).is_some();
        out.data.push(if on_beat { 1.0 } else { 0.0 });
        out.data.push(rhythm.onset_envelope[t]);
        out.data.extend_from_slice(tempogram.column(t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rhythm::{analyze, onset};

    #[test]
    fn frames_concatenate_the_four_features() {
        let y: Vec<f32> =
            (0..48_000).map(|i| if i % 8000 < 200 { ((i % 8000) as f32 * 0.3).sin() } else { 0.0 }).collect();
        let params = RhythmParams::default();
        let input = audio_input(&y, &params).unwrap();
        let rhythm = analyze(&y, &params).unwrap();
        let mel = onset::mel_db(&y, &params.spectrogram, &params.db);
        assert_eq!(input.n_bins, 128 + 2 + 384);
        assert_eq!(input.len(), mel.len());
        for t in [0, 10, input.len() - 1] {
            let frame = input.frame(t);
            assert_eq!(&frame[..128], mel.frame(t));
            assert_eq!(frame[128], if rhythm.beat_frames.contains(&t) { 1.0 } else { 0.0 });
            assert_eq!(frame[129], rhythm.onset_envelope[t]);
        }
        let beats: f32 = input.iter().map(|f| f[128]).sum();
        assert_eq!(beats as usize, rhythm.beat_frames.len());
    }
}
