//! Music-to-dance retrieval (paper Sec. 4.3): how similar a piece of music is
//! to a dance, by embeddings (S_e), by rhythm (S_r), and both (Eq. 21).
//!
//! A query is music: its audio embedding (the trained model's f'_a, one
//! vector per analysis frame) and its rhythm points (onset frames). A
//! candidate is a stretch of dance: its visual embedding (f'_v) and visual
//! rhythm points. Frames are the model's analysis frames (8 fps for the
//! paper), so rhythm positions of both sides are comparable frame indices.

use crate::metrics::EventMatches;

/// The mean of `frames` (consecutive vectors of `dim` values each), scaled to unit length: a
/// clip's, or several clips', per-frame embeddings pooled over time. `None` if there are no
/// frames or they cancel out.
pub fn pooled_embedding(frames: &[f32], dim: usize) -> Option<Vec<f32>> {
    if dim == 0 || frames.len() < dim {
        return None;
    }
    let mut sum = vec![0f64; dim];
    for frame in frames.chunks_exact(dim) {
        for (s, &x) in sum.iter_mut().zip(frame) {
            *s += x as f64;
        }
    }
    let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
    (norm > 1e-12).then(|| sum.iter().map(|s| (s / norm) as f32).collect())
}

/// S_e of Eq. 21: the cosine similarity of the music's and the dance's pooled embeddings
/// (unit length, as [`pooled_embedding`] makes them), in [-1, 1]. The paper compares E_a with
/// E_v; pooling over time first makes music and dance of different lengths and offsets
/// comparable, as the audio-visual correspondence task (AVC) trained them to be.
pub fn embedding_similarity(music: &[f32], dance: &[f32]) -> f64 {
    music.iter().zip(dance).map(|(&a, &v)| a as f64 * v as f64).sum()
}

/// Frames a rhythm point may be off and still coincide (±1 frame, as the rhythm metrics allow).
pub const RHYTHM_TOLERANCE: i64 = 1;

/// S_r of Eq. 21, which the paper leaves undefined: Eq. 16's coincidence of rhythm positions,
/// made invariant to where the dance starts in the music. For every offset d of the dance
/// against the music, match the dance's rhythm points one to one with music onsets within
/// ±[`RHYTHM_TOLERANCE`] frames (mir_eval's rule, as the rhythm metrics match); take the best
/// offset's matches, divided by √(|music points|·|dance points|): the Ochiai coefficient (the
/// cosine of the two binary sequences) at the best alignment, in [0, 1], 1 when the dance's
/// points are the music's. Dividing by both sizes keeps a busy dance, which meets onsets by
/// chance more often, from winning by its size alone.
///
/// Why this and not Eq. 16 as written: Eq. 16 compares two onset sequences already on one
/// timeline (a clip's own music against a candidate negative's), while a retrieval candidate is
/// a dance filmed to the music from an unknown start; the best offset is that start. A dance
/// to the same song lines its rhythm points up with the song's onsets at one offset, a dance to
/// other music only by chance at each.
///
/// Rhythm points are sparse, so offsets are found pair by pair (3·|music|·|dance| steps give
/// each offset an upper bound), and matched from the most promising down until no bound can
/// beat the best. Points are frame indices, in any order; duplicates count once.
pub fn rhythm_similarity(music: &[i64], dance: &[i64]) -> f64 {
    let (music, dance) = (dedup(music), dedup(dance));
    if music.is_empty() || dance.is_empty() {
        return 0.0;
    }
    // The frames within tolerance of an onset, each once: a dance point at v can meet the
    // music at offset d only if v + d is one of them, so their count bounds the matches.
    let near = dedup(&music.iter().flat_map(|&m| m - RHYTHM_TOLERANCE..=m + RHYTHM_TOLERANCE).collect::<Vec<_>>());
    let lo = near[0] - dance[dance.len() - 1];
    let hi = near[near.len() - 1] - dance[0];
    let mut bounds = vec![0u32; (hi - lo + 1) as usize];
    for &m in &near {
        for &v in &dance {
            bounds[(m - v - lo) as usize] += 1;
        }
    }
    let mut offsets: Vec<(u32, i64)> =
        bounds.iter().enumerate().filter(|(_, b)| **b > 0).map(|(i, &b)| (b, lo + i as i64)).collect();
    offsets.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut best = 0;
    let mut shifted = Vec::with_capacity(dance.len());
    for (bound, offset) in offsets {
        if bound as usize <= best {
            break;
        }
        shifted.clear();
        shifted.extend(dance.iter().map(|v| v + offset));
        best = best.max(EventMatches::of(&music, &shifted, RHYTHM_TOLERANCE).matched);
    }
    best as f64 / ((music.len() * dance.len()) as f64).sqrt()
}

fn dedup(points: &[i64]) -> Vec<i64> {
    let mut points = points.to_vec();
    points.sort_unstable();
    points.dedup();
    points
}

/// Rescales one query's similarities over its candidates to zero mean and unit variance, so that
/// S_e (a cosine) and S_r (a coincidence ratio) weigh as Eq. 21's λ₃ says, whatever their
/// natural spreads. All-equal scores become zeros: they rank nothing.
pub fn standardized(scores: &[f64]) -> Vec<f64> {
    let n = scores.len() as f64;
    if scores.is_empty() {
        return Vec::new();
    }
    let mean = scores.iter().sum::<f64>() / n;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n).sqrt();
    scores.iter().map(|s| if std > 1e-12 { (s - mean) / std } else { 0.0 }).collect()
}

/// Eq. 21: S_hyb = λ₃·S_e + (1 − λ₃)·S_r, for one query over its candidates, each similarity
/// first [`standardized`] over the candidates. λ₃ = 1 is the paper's "w/o rhy" ablation.
pub fn hybrid_similarity(embedding: &[f64], rhythm: &[f64], lambda: f64) -> Vec<f64> {
    let (e, r) = (standardized(embedding), standardized(rhythm));
    e.iter().zip(&r).map(|(e, r)| lambda * e + (1.0 - lambda) * r).collect()
}

/// Candidate indices from the most similar down; equal scores keep the candidates' order.
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_embeddings_are_unit_means() {
        let pooled = pooled_embedding(&[1.0, 0.0, 0.0, 1.0], 2).unwrap();
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((pooled[0] - half).abs() < 1e-6 && (pooled[1] - half).abs() < 1e-6);
        assert_eq!(pooled_embedding(&[1.0, 0.0, -1.0, 0.0], 2), None);
        assert_eq!(pooled_embedding(&[], 2), None);
        assert!((embedding_similarity(&pooled, &[1.0, 0.0]) - half as f64).abs() < 1e-6);
    }

    #[test]
    fn rhythm_similarity_by_hand() {
        // The same points: every one pairs at offset 0.
        assert!((rhythm_similarity(&[0, 8, 16, 24], &[0, 8, 16, 24]) - 1.0).abs() < 1e-12);
        // The dance starts 5 frames into the music, one point a frame late: still all four.
        assert!((rhythm_similarity(&[5, 13, 21, 29], &[0, 8, 17, 24]) - 1.0).abs() < 1e-12);
        // Two points off by three frames: two of four coincide at the best offset.
        assert!((rhythm_similarity(&[0, 8, 16, 24], &[0, 8, 19, 27]) - 0.5).abs() < 1e-12);
        // Off by two, the offset between (−1) has all four within a frame.
        assert!((rhythm_similarity(&[0, 8, 16, 24], &[0, 8, 18, 26]) - 1.0).abs() < 1e-12);
        // Onsets on neighbouring frames: a dance point near both still counts once.
        assert!((rhythm_similarity(&[7, 8, 9, 16], &[8, 16]) - 2.0 / 8f64.sqrt()).abs() < 1e-12);
        // Dance points on neighbouring frames: one onset takes one of them.
        assert!((rhythm_similarity(&[8, 16], &[7, 8, 9, 16]) - 2.0 / 8f64.sqrt()).abs() < 1e-12);
        // Music with 16 points, a dance with 4 of them: 4 / √(16·4).
        let music: Vec<i64> = (0..16).map(|k| k * 4).collect();
        assert!((rhythm_similarity(&music, &[0, 4, 8, 12]) - 0.5).abs() < 1e-12);
        // Nothing to match.
        assert_eq!(rhythm_similarity(&[], &[1, 2]), 0.0);
        // Duplicates count once; order does not matter.
        assert!((rhythm_similarity(&[24, 0, 16, 8, 8], &[16, 0, 24, 8]) - 1.0).abs() < 1e-12);
    }

    /// The definition, every offset matched, against the bounded search.
    #[test]
    fn rhythm_similarity_is_its_definition() {
        let mut rng = crate::synth::SplitMix64::new(3);
        for _ in 0..200 {
            let points = |rng: &mut crate::synth::SplitMix64, n: usize, span: f64| -> Vec<i64> {
                (0..n).map(|_| (rng.unit() * span) as i64 - 5).collect()
            };
            let n = 1 + (rng.unit() * 30.0) as usize;
            let (music, dance) = (points(&mut rng, n, 120.0), points(&mut rng, 1 + n / 2, 60.0));
            let (m, v) = (dedup(&music), dedup(&dance));
            let best = (-200..200)
                .map(|d| {
                    let shifted: Vec<i64> = v.iter().map(|p| p + d).collect();
                    EventMatches::of(&m, &shifted, RHYTHM_TOLERANCE).matched
                })
                .max()
                .unwrap();
            let expected = best as f64 / ((m.len() * v.len()) as f64).sqrt();
            assert!((rhythm_similarity(&music, &dance) - expected).abs() < 1e-12, "{music:?} {dance:?}");
        }
    }

    #[test]
    fn hybrid_weighs_standardized_similarities() {
        let z = standardized(&[1.0, 2.0, 3.0]);
        let s = (2.0f64 / 3.0).sqrt();
        assert!((z[0] + 1.0 / s).abs() < 1e-12 && z[1].abs() < 1e-12 && (z[2] - 1.0 / s).abs() < 1e-12);
        assert_eq!(standardized(&[0.3, 0.3]), [0.0, 0.0]);
        // The embeddings prefer candidate 0, the rhythm candidate 2. Standardized, e is
        // [√1.5, 0, −√1.5] and r [−1/√2, −1/√2, √2]; halfway, 0 keeps the lead.
        let (e, r) = ([0.9, 0.8, 0.7], [0.0, 0.0, 1.0]);
        assert_eq!(ranking(&hybrid_similarity(&e, &r, 1.0)), [0, 1, 2]);
        assert_eq!(ranking(&hybrid_similarity(&e, &r, 0.0)), [2, 0, 1]);
        let half = hybrid_similarity(&e, &r, 0.5);
        let by_hand =
            [0.5 * (1.5f64.sqrt() - 0.5f64.sqrt()), -0.5 * 0.5f64.sqrt(), 0.5 * (2f64.sqrt() - 1.5f64.sqrt())];
        assert!(half.iter().zip(by_hand).all(|(a, b)| (a - b).abs() < 1e-12), "{half:?}");
        assert_eq!(ranking(&half), [0, 2, 1]);
        // Ties keep the candidates' order.
        assert_eq!(ranking(&[1.0, 2.0, 1.0, 2.0]), [1, 3, 0, 2]);
    }
}
