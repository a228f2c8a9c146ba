//! The self-supervision's sampling rules (paper Sec. 3.2): AVC negatives
//! (another video's audio) kept only when their rhythm differs from the
//! clip's (Eq. 16), AVTS negatives (the clip's own audio, shifted) never
//! shifted by a multiple of an eighth note (Eq. 17), and the curriculum that
//! switches from one to the other.

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Which pretext task builds a step's negatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PretextTask {
    /// Audio-visual correspondence: the negative audio comes from another video.
    Avc,
    /// Audio-visual temporal synchronisation: the negative is the clip's own audio, shifted.
    Avts,
}

/// Parameters of the sampling rules.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// α of Eq. 16: the fraction of frames whose onset flags must differ.
    pub rhythm_threshold: f64,
    /// How close, in frames, a shift may come to a multiple of an eighth note
    /// and still count as one (Eq. 17's `≠ 0`, for eighth notes that last a
    /// fractional number of frames).
    pub shift_tolerance: f64,
    /// Smallest and largest AVTS shift, in frames (either direction).
    pub min_shift: i64,
    pub max_shift: i64,
    /// Epochs of AVC before AVTS takes over (the paper: 35 of 50).
    pub avc_epochs: u64,
    /// Candidates drawn from the pool before a clip goes without an AVC negative.
    pub attempts: usize,
}

impl Default for SamplingParams {
    fn default() -> SamplingParams {
        SamplingParams {
            rhythm_threshold: 0.1,
            shift_tolerance: 0.25,
            min_shift: 2,
            max_shift: 16,
            avc_epochs: 35,
            attempts: 32,
        }
    }
}

impl SamplingParams {
    /// The curriculum (Sec. 4.1, after Korbar et al.): AVC first, then AVTS.
    pub fn task(&self, epoch: u64) -> PretextTask {
        if epoch < self.avc_epochs { PretextTask::Avc } else { PretextTask::Avts }
    }
}

/// Eq. 16, the rhythm similarity score `s = Σ_t |O^t_pos − O^t_neg| − αT` of
/// two clips' per-frame onset flags (T frames each): positive when more than
/// a fraction α of the frames disagree.
pub fn rhythm_similarity_score(positive: &[bool], negative: &[bool], alpha: f64) -> f64 {
    assert_eq!(positive.len(), negative.len(), "onset flags of clips of the same length");
    let differing = positive.iter().zip(negative).filter(|(p, n)| p != n).count();
    differing as f64 - alpha * positive.len() as f64
}

/// Eq. 16's rule: a candidate negative is used only when its score is positive.
pub fn is_rhythm_distinct(positive: &[bool], negative: &[bool], alpha: f64) -> bool {
    rhythm_similarity_score(positive, negative, alpha) > 0.0
}

/// Video frames in an eighth note at `bpm` quarter notes per minute:
/// `k_fps · 60 / k_bpm · 1/2` (Eq. 17).
pub fn eighth_note_frames(fps: f64, bpm: f64) -> f64 {
    fps * 60.0 / bpm / 2.0
}

/// Eq. 17: a shift of `shift` frames is allowed when it is not (within
/// `tolerance` frames) a multiple of an eighth note, so a periodic dance is
/// not shifted onto its own next beat. A tempo of 0 (none estimated) puts no
/// constraint; a shift of 0 is never a negative.
pub fn is_allowed_shift(shift: i64, fps: f64, bpm: f64, tolerance: f64) -> bool {
    if shift == 0 {
        return false;
    }
    if bpm <= 0.0 || !bpm.is_finite() {
        return true;
    }
    let eighth = eighth_note_frames(fps, bpm);
    let phase = (shift.abs() as f64) % eighth;
    phase.min(eighth - phase) > tolerance
}

/// An AVTS shift for a clip at `bpm`: uniform over the allowed shifts in
/// ±[min_shift, max_shift] that keep the shifted audio inside
/// `[-room_before, room_after]` frames; `None` when there is none.
pub fn draw_shift(
    rng: &mut impl RngExt,
    fps: f64,
    bpm: f64,
    room_before: i64,
    room_after: i64,
    params: &SamplingParams,
) -> Option<i64> {
    let allowed: Vec<i64> = (params.min_shift.max(1)..=params.max_shift)
        .flat_map(|s| [-s, s])
        .filter(|&s| -room_before <= s && s <= room_after)
        .filter(|&s| is_allowed_shift(s, fps, bpm, params.shift_tolerance))
        .collect();
    (!allowed.is_empty()).then(|| allowed[rng.random_range(0..allowed.len())])
}

/// An AVC negative for `anchor` from an offline pool of clips' onset flags
/// (the whole dataset, Sec. 3.3): a clip of another video whose rhythm
/// differs by Eq. 16, drawn uniformly; `None` after `params.attempts` misses.
/// `video_of[i]` names the video of pool clip i.
pub fn draw_negative<V: PartialEq>(
    rng: &mut impl RngExt,
    anchor: usize,
    onsets: &[Vec<bool>],
    video_of: &[V],
    params: &SamplingParams,
) -> Option<usize> {
    assert_eq!(onsets.len(), video_of.len(), "one video per pool clip");
    if onsets.len() < 2 {
        return None;
    }
    (0..params.attempts).find_map(|_| {
        let candidate = rng.random_range(0..onsets.len());
        let usable = video_of[candidate] != video_of[anchor]
            && is_rhythm_distinct(&onsets[anchor], &onsets[candidate], params.rhythm_threshold);
        usable.then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn score_counts_disagreeing_frames_minus_alpha_t() {
        let a = [true, false, false, true, false, false, false, false, true, false];
        let b = [true, false, true, false, false, false, false, false, false, false];
        // Frames 2, 3 and 8 differ: 3 − 0.2·10 = 1.
        assert!((rhythm_similarity_score(&a, &b, 0.2) - 1.0).abs() < 1e-12);
        assert!(is_rhythm_distinct(&a, &b, 0.2));
        assert!(!is_rhythm_distinct(&a, &b, 0.3), "3 − 3 = 0 is not positive");
        assert!(!is_rhythm_distinct(&a, &a, 0.0), "a clip never differs from itself");
    }

    #[test]
    fn shifts_avoid_multiples_of_an_eighth_note() {
        // 8 fps, 120 bpm: an eighth note is 2 frames; only odd shifts are allowed.
        assert_eq!(eighth_note_frames(8.0, 120.0), 2.0);
        for shift in -9..=9 {
            assert_eq!(is_allowed_shift(shift, 8.0, 120.0, 0.25), shift % 2 != 0, "shift {shift}");
        }
        // 8 fps, 128 bpm: 1.875 frames; 15 frames is 8 eighth notes exactly,
        // 2 frames is within the tolerance of one, 3 frames is 0.75 from 3.75.
        let eighth = eighth_note_frames(8.0, 128.0);
        assert!((eighth - 1.875).abs() < 1e-12);
        assert!(!is_allowed_shift(15, 8.0, 128.0, 0.25));
        assert!(!is_allowed_shift(2, 8.0, 128.0, 0.25));
        assert!(is_allowed_shift(3, 8.0, 128.0, 0.25));
        assert!(is_allowed_shift(7, 8.0, 128.0, 0.25), "7 is 0.5 from 7.5");
        assert!(is_allowed_shift(4, 8.0, 0.0, 0.25), "no tempo, no constraint");
        assert!(!is_allowed_shift(0, 8.0, 0.0, 0.25));
    }

    #[test]
    fn drawn_shifts_and_negatives_obey_the_rules() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let params = SamplingParams::default();
        for bpm in [60.0, 90.0, 117.0, 120.0, 128.0, 150.0, 174.0] {
            for _ in 0..200 {
                let shift = draw_shift(&mut rng, 8.0, bpm, 5, 16, &params).expect("some shift is allowed");
                let eighth = eighth_note_frames(8.0, bpm);
                let phase = (shift.abs() as f64) % eighth;
                assert!(phase.min(eighth - phase) > params.shift_tolerance, "shift {shift} at {bpm} bpm");
                assert!((-5..=16).contains(&shift) && shift.abs() >= params.min_shift);
            }
        }
        // 480 bpm at 8 fps: an eighth note is half a frame, every shift is a multiple.
        assert_eq!(draw_shift(&mut rng, 8.0, 480.0, 16, 16, &params), None);

        // Pool: clips 0 and 1 of video "a" (same rhythm), 2 of "b" (same
        // rhythm as 0), 3 of "c" (different).
        let on = |frames: &[usize]| (0..20).map(|t| frames.contains(&t)).collect::<Vec<bool>>();
        let onsets =
            vec![on(&[0, 4, 8, 12, 16]), on(&[0, 4, 8, 12, 16]), on(&[0, 4, 8, 12, 16]), on(&[2, 6, 10, 14, 18])];
        let videos = ["a", "a", "b", "c"];
        for _ in 0..100 {
            assert_eq!(draw_negative(&mut rng, 0, &onsets, &videos, &params), Some(3));
        }
        assert_eq!(draw_negative(&mut rng, 0, &onsets[..3], &videos[..3], &params), None);
    }

    #[test]
    fn curriculum_switches_after_the_avc_epochs() {
        let params = SamplingParams { avc_epochs: 35, ..Default::default() };
        assert_eq!(params.task(0), PretextTask::Avc);
        assert_eq!(params.task(34), PretextTask::Avc);
        assert_eq!(params.task(35), PretextTask::Avts);
    }
}
