//! The explicit pathway's ground truth: music onsets (librosa's
//! `onset_detect`) and the onset envelope, moved from audio frames onto the
//! clip's video frames.
//!
//! Video frame t shows media time `t / fps` after the clip's start; an onset
//! at time τ marks the frame nearest to it, `round(τ · fps)`, so each frame
//! owns the half-frame on either side of its timestamp. Two onsets in one
//! frame mark it once; onsets outside the clip mark nothing.

/// Per-frame onset flags of a clip of `frames` video frames for onset times
/// (seconds from the clip's start).
pub fn onset_flags(onset_times: &[f64], fps: f64, frames: usize) -> Vec<bool> {
    let mut flags = vec![false; frames];
    for &time in onset_times {
        let frame = (time * fps).round();
        if frame >= 0.0 && (frame as usize) < frames {
            flags[frame as usize] = true;
        }
    }
    flags
}

/// The onset envelope (one value per audio frame, `audio_rate` frames per
/// second, frame i at time `i / audio_rate` from the clip's start) at each
/// video frame: the largest value among the audio frames the video frame
/// owns, scaled so the clip's largest is 1 (all 0 for a silent clip).
pub fn envelope_at_frames(envelope: &[f32], audio_rate: f64, fps: f64, frames: usize) -> Vec<f32> {
    let mut at_frames = vec![0f32; frames];
    for (i, &value) in envelope.iter().enumerate() {
        let frame = (i as f64 / audio_rate * fps).round() as usize;
        if let Some(slot) = at_frames.get_mut(frame) {
            *slot = slot.max(value);
        }
    }
    let peak = at_frames.iter().copied().fold(0f32, f32::max);
    if peak > 0.0 {
        at_frames.iter_mut().for_each(|v| *v /= peak);
    }
    at_frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onsets_mark_their_nearest_frame() {
        // At 8 fps frames are 0.125 s apart: 0.06 → 0, 0.07 → 1 (0.0625 is the
        // boundary), 0.5 → 4, 0.51 → 4 again, 1.99 → 16 is outside 16 frames.
        let flags = onset_flags(&[0.06, 0.07, 0.5, 0.51, 1.99, -0.2], 8.0, 16);
        let marked: Vec<usize> = flags.iter().enumerate().filter(|(_, f)| **f).map(|(t, _)| t).collect();
        assert_eq!(marked, [0, 1, 4]);
    }

    #[test]
    fn envelope_takes_the_maximum_of_each_frames_share() {
        // 4 audio frames per video frame (32 per s vs 8 fps): frame 0 owns audio
        // frames 0-1, frame 1 owns 2-5, frame 2 owns 6-9.
        let envelope = [1.0, 0.0, 0.0, 4.0, 2.0, 0.0, 0.0, 0.0, 8.0, 0.0];
        assert_eq!(envelope_at_frames(&envelope, 32.0, 8.0, 3), [0.125, 0.5, 1.0]);
        assert_eq!(envelope_at_frames(&[0.0; 10], 32.0, 8.0, 3), [0.0; 3]);
    }
}
