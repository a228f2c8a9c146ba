//! Downstream metrics.

/// Beat Align Score (Li et al. 2021, AIST++/FACT; Siyao et al. 2022,
/// Bailando), music → dance: `BAS = 1/|B_m| Σ_{t ∈ B_m} exp(−min_{s ∈ B_d} (s − t)² / 2σ²)`,
/// with `B_m` the music beats and `B_d` the dance (visual) beats, in seconds,
/// and `sigma_s` the tolerance (their σ = 3 frames at 60 fps, 0.05 s). How
/// well the dance follows the music, in [0, 1]; `None` when either set is empty.
pub fn beat_align_score(music_beats: &[f64], dance_beats: &[f64], sigma_s: f64) -> Option<f64> {
    if music_beats.is_empty() || dance_beats.is_empty() {
        return None;
    }
    let score: f64 = music_beats
        .iter()
        .map(|&t| {
            let nearest = dance_beats.iter().map(|&s| (s - t) * (s - t)).fold(f64::INFINITY, f64::min);
            (-nearest / (2.0 * sigma_s * sigma_s)).exp()
        })
        .sum();
    Some(score / music_beats.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beat_align_score_by_hand() {
        assert_eq!(beat_align_score(&[1.0, 2.0], &[1.0, 2.0, 3.0], 0.05), Some(1.0));
        // One beat hit, one 0.1 s off: (1 + e^(−0.01 / 0.005)) / 2.
        let score = beat_align_score(&[1.0, 2.0], &[1.0, 2.1], 0.05).unwrap();
        assert!((score - (1.0 + (-2.0f64).exp()) / 2.0).abs() < 1e-12);
        // Direction: extra dance beats cost nothing, missed music beats do.
        assert_eq!(beat_align_score(&[1.0], &[1.0, 5.0, 7.0], 0.05), Some(1.0));
        assert!(beat_align_score(&[1.0, 5.0, 7.0], &[1.0], 0.05).unwrap() < 0.34);
        assert_eq!(beat_align_score(&[], &[1.0], 0.05), None);
    }
}
