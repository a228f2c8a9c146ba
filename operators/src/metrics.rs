//! Downstream metrics.

/// Beat Align Score, music → motion, as Bailando (Siyao et al. 2022) defines it: for each
/// music beat, how near the nearest motion (visual) beat is,
/// `BAS = 1/|B_m| Σ_{t ∈ B_m} exp(−min_{s ∈ B_d} (s − t)² / 2σ²)`, times in seconds, `sigma_s`
/// the tolerance (their σ = 3 frames at 60 fps, 0.05 s). How much of the music the dance
/// marks, in [0, 1]; `None` when either set is empty.
pub fn beat_align_music_to_motion(music_beats: &[f64], motion_beats: &[f64], sigma_s: f64) -> Option<f64> {
    mean_nearest_kernel(music_beats, motion_beats, sigma_s)
}

/// Beat Align Score, motion → music, as AIST++/FACT (Li et al. 2021) defines it: for each
/// motion beat, how near the nearest music beat is (the same kernel the other way round). How
/// much of the dance lands on the music, in [0, 1]; `None` when either set is empty.
pub fn beat_align_motion_to_music(motion_beats: &[f64], music_beats: &[f64], sigma_s: f64) -> Option<f64> {
    mean_nearest_kernel(motion_beats, music_beats, sigma_s)
}

/// Mean over `from` of exp(−d²/2σ²), d the distance to the nearest of `to`.
fn mean_nearest_kernel(from: &[f64], to: &[f64], sigma_s: f64) -> Option<f64> {
    if from.is_empty() || to.is_empty() {
        return None;
    }
    let score: f64 = from
        .iter()
        .map(|&t| {
            let nearest = to.iter().map(|&s| (s - t) * (s - t)).fold(f64::INFINITY, f64::min);
            (-nearest / (2.0 * sigma_s * sigma_s)).exp()
        })
        .sum();
    Some(score / from.len() as f64)
}

/// Counts of a one-to-one matching of estimated events to reference events
/// (e.g. visual rhythm frames to music onset frames) within `window`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventMatches {
    pub reference: usize,
    pub estimated: usize,
    pub matched: usize,
}

impl EventMatches {
    /// The largest one-to-one matching with `|r − e| ≤ window` (mir_eval's
    /// onset evaluation, for sorted events on a line: matching each
    /// reference to the earliest unmatched estimate in reach is optimal).
    pub fn of(reference: &[i64], estimated: &[i64], window: i64) -> EventMatches {
        let (mut r, mut e) = (reference.to_vec(), estimated.to_vec());
        r.sort_unstable();
        e.sort_unstable();
        let (mut i, mut j, mut matched) = (0, 0, 0);
        while i < r.len() && j < e.len() {
            if e[j] < r[i] - window {
                j += 1;
            } else if e[j] > r[i] + window {
                i += 1;
            } else {
                matched += 1;
                i += 1;
                j += 1;
            }
        }
        EventMatches { reference: r.len(), estimated: e.len(), matched }
    }

    /// Matched estimates over estimates (1 when nothing was estimated and nothing was there).
    pub fn precision(&self) -> f64 {
        ratio(self.matched, self.estimated, self.reference == 0)
    }

    /// Matched references over references.
    pub fn recall(&self) -> f64 {
        ratio(self.matched, self.reference, self.estimated == 0)
    }

    /// Harmonic mean of precision and recall (0 when both are 0).
    pub fn f_measure(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
    }
}

impl std::ops::Add for EventMatches {
    type Output = EventMatches;

    fn add(self, other: EventMatches) -> EventMatches {
        EventMatches {
            reference: self.reference + other.reference,
            estimated: self.estimated + other.estimated,
            matched: self.matched + other.matched,
        }
    }
}

/// Average precision of one query's scores over its candidates, as scikit-learn's
/// `average_precision_score` computes it: `AP = Σ_n (R_n − R_{n−1}) P_n` over the distinct
/// scores from the highest down, where `P_n` and `R_n` are the precision and recall of taking
/// every candidate scoring at least the n-th (candidates with equal scores enter together, so
/// ties cost no order). `None` when no candidate is relevant, or a score is not finite.
pub fn average_precision(scores: &[f64], relevant: &[bool]) -> Option<f64> {
    let positives = relevant.iter().filter(|&&r| r).count();
    if positives == 0 || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut taken, mut hits, mut ap) = (0usize, 0usize, 0.0);
    let mut at = 0;
    while at < order.len() {
        let tied = order[at..].iter().take_while(|&&i| scores[i] == scores[order[at]]).count();
        let new_hits = order[at..at + tied].iter().filter(|&&i| relevant[i]).count();
        (taken, hits, at) = (taken + tied, hits + new_hits, at + tied);
        ap += new_hits as f64 / positives as f64 * hits as f64 / taken as f64;
    }
    Some(ap)
}

/// Whether a relevant candidate is among the first `k` of `ranking` (candidate indices, best
/// first). Averaged over queries this is R@K as retrieval papers report it (Table 3): the share
/// of queries answered within the top K.
pub fn hit_at_k(ranking: &[usize], relevant: &[bool], k: usize) -> bool {
    ranking.iter().take(k).any(|&i| relevant[i])
}

/// The share of the first `k` of `ranking` that is relevant (P@K; fewer than `k` candidates
/// count as misses, as for a query with a short list).
pub fn precision_at_k(ranking: &[usize], relevant: &[bool], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    ranking.iter().take(k).filter(|&&i| relevant[i]).count() as f64 / k as f64
}

fn ratio(part: usize, whole: usize, both_empty: bool) -> f64 {
    match whole {
        0 if both_empty => 1.0,
        0 => 0.0,
        _ => part as f64 / whole as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_metrics_by_hand() {
        // Ranking: relevant, not, relevant, not. AP = (1/2)(1/1) + (1/2)(2/3) = 5/6.
        let (scores, relevant) = ([0.9, 0.8, 0.7, 0.1], [true, false, true, false]);
        assert!((average_precision(&scores, &relevant).unwrap() - 5.0 / 6.0).abs() < 1e-12);
        // A relevant and an irrelevant candidate tied on top enter together: P = 1/2 there.
        let (scores, relevant) = ([0.5, 0.5, 0.1], [false, true, true]);
        assert!((average_precision(&scores, &relevant).unwrap() - (0.5 * 0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(average_precision(&[0.3, 0.2], &[false, false]), None);
        assert_eq!(average_precision(&[f64::NAN, 0.2], &[true, false]), None);
        // Negative scores are scores like any other (raw cosines).
        assert_eq!(average_precision(&[-0.2, -0.9], &[true, false]), Some(1.0));
        let ranking = [2, 0, 1, 3];
        let relevant = [true, false, false, false];
        assert!(!hit_at_k(&ranking, &relevant, 1) && hit_at_k(&ranking, &relevant, 2));
        assert_eq!(precision_at_k(&ranking, &relevant, 2), 0.5);
        assert_eq!(precision_at_k(&ranking, &relevant, 10), 0.1);
    }

    #[test]
    fn event_matching_by_hand() {
        // References 10, 20, 30; estimates 9, 11 (only one may take 10), 25, 31.
        let m = EventMatches::of(&[10, 20, 30], &[9, 11, 25, 31], 1);
        assert_eq!(m, EventMatches { reference: 3, estimated: 4, matched: 2 });
        assert_eq!(m.precision(), 0.5);
        assert!((m.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f_measure() - 4.0 / 7.0).abs() < 1e-12);
        // Greedy must not let an early reference steal the only estimate a later one can use:
        // references 4 and 5, estimates 4 and 6, window 1 → both match (4-4, 5-6).
        assert_eq!(EventMatches::of(&[4, 5], &[6, 4], 1).matched, 2);
        assert_eq!(EventMatches::of(&[], &[], 1).f_measure(), 1.0);
        assert_eq!(EventMatches::of(&[3], &[], 1).f_measure(), 0.0);
    }

    #[test]
    fn beat_align_scores_by_hand() {
        let (to_motion, to_music) = (beat_align_music_to_motion, beat_align_motion_to_music);
        assert_eq!(to_motion(&[1.0, 2.0], &[1.0, 2.0, 3.0], 0.05), Some(1.0));
        // One music beat 0.1 s = 2σ off its nearest motion beat: exp(−2).
        let score = to_motion(&[1.0, 2.0], &[1.0, 2.1], 0.05).unwrap();
        assert!((score - (1.0 + (-2.0f64).exp()) / 2.0).abs() < 1e-12);
        // A dance marking one beat of three: it covers a third of the music, but all of it
        // lands on the music.
        let (music, motion) = ([1.0, 5.0, 7.0], [1.0]);
        assert!((to_motion(&music, &motion, 0.05).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(to_music(&motion, &music, 0.05), Some(1.0));
        // A dance with extra moves off the beat: all music beats marked, half the moves on it.
        let (music, motion) = ([1.0, 2.0], [1.0, 1.5, 2.0, 2.5]);
        assert_eq!(to_motion(&music, &motion, 0.05), Some(1.0));
        let off = (-0.25f64 / (2.0 * 0.05 * 0.05)).exp();
        assert!((to_music(&motion, &music, 0.05).unwrap() - (2.0 + 2.0 * off) / 4.0).abs() < 1e-12);
        for (a, b) in [(&[][..], &[1.0][..]), (&[1.0][..], &[][..])] {
            assert_eq!((to_motion(a, b, 0.05), to_music(a, b, 0.05)), (None, None));
        }
    }
}
