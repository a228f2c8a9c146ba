//! Beat tracking as librosa 0.11's `beat.beat_track` does it (Ellis 2007,
//! the numba rewrite of 0.10.2; spec §10): a local score from the
//! normalised onset envelope, a dynamic programme rewarding beats one period
//! apart, the last-beat rule, backtracking, and trimming of weak edge beats.

/// Beat-tracker parameters (librosa names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeatParams {
    /// How strictly beats keep to the tempo (τ).
    pub tightness: f64,
    /// Drop weak leading and trailing beats.
    pub trim: bool,
}

impl Default for BeatParams {
    fn default() -> Self {
        BeatParams { tightness: 100.0, trim: true }
    }
}

/// Numpy's pairwise summation of an f32 slice (what `np.sum`/`np.mean` do on
/// contiguous data): blocks of 8 accumulators up to 128 values, halves above.
fn pairwise_sum(x: &[f32]) -> f32 {
    let n = x.len();
    if n < 8 {
        return x.iter().fold(0f32, |acc, &v| acc + v);
    }
    if n <= 128 {
        let mut r: [f32; 8] = std::array::from_fn(|i| x[i]);
        let blocks = n - n % 8;
        for chunk in x[8..blocks].chunks_exact(8) {
            r.iter_mut().zip(chunk).for_each(|(acc, &v)| *acc += v);
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &x[blocks..] {
            sum += v;
        }
        return sum;
    }
    let half = n / 2;
    let half = half - half % 8;
    pairwise_sum(&x[..half]) + pairwise_sum(&x[half..])
}

/// `x / (std(x, ddof=1) + tiny)`, in f32 as numpy computes it.
fn normalize_onsets(envelope: &[f32]) -> Vec<f32> {
    let n = envelope.len();
    let mean = pairwise_sum(envelope) / n as f32;
    let squares: Vec<f32> = envelope.iter().map(|&v| (v - mean) * (v - mean)).collect();
    let std = (pairwise_sum(&squares) / n.saturating_sub(1).max(1) as f32).sqrt();
    envelope.iter().map(|&v| v / (std + f32::MIN_POSITIVE)).collect()
}

/// Local score: the normalised envelope smoothed by a Gaussian of σ = P/32
/// frames, as librosa's "same" convolution computes it (`x[0]` unused).
fn local_score(x: &[f32], period: usize) -> Vec<f64> {
    let n = x.len();
    let p = period as f64;
    let window: Vec<f64> = (0..=2 * period).map(|k| (-0.5 * ((k as f64 - p) * 32.0 / p).powi(2)).exp()).collect();
    let k_len = window.len();
    (0..n)
        .map(|i| {
            let mut score = 0f64;
            for k in (i + k_len / 2).saturating_sub(n - 1)..(i + k_len / 2).min(k_len) {
                score += window[k] * x[i + k_len / 2 - k] as f64;
            }
            score
        })
        .collect()
}

/// The dynamic programme: for each frame, the best predecessor between
/// `round(P/2)` and `2P` frames back, scored `cum[loc] − τ·(ln d − ln P)²`.
fn dynamic_programme(local: &[f64], period: f64, tightness: f64) -> (Vec<isize>, Vec<f64>) {
    let n = local.len();
    let threshold = 0.01 * local.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut backlink, mut cumulative) = (vec![-1isize; n], vec![0f64; n]);
    let nearest = round_half_even(period / 2.0) as usize;
    let farthest = (2.0 * period) as usize;
    // The transition penalty depends on the distance only: compute it once per distance.
    let penalty: Vec<f64> = (0..=farthest).map(|d| tightness * ((d as f64).ln() - period.ln()).powi(2)).collect();
    let mut first_beat = true;
    for (i, &score) in local.iter().enumerate() {
        let (mut best, mut location) = (f64::NEG_INFINITY, -1isize);
        for d in nearest..=farthest {
            if d > i {
                break;
            }
            let candidate = cumulative[i - d] - penalty[d];
            if candidate > best {
                (best, location) = (candidate, (i - d) as isize);
            }
        }
        cumulative[i] = if location >= 0 { score + best } else { score };
        if first_beat && score < threshold {
            backlink[i] = -1;
        } else {
            backlink[i] = location;
            first_beat = false;
        }
    }
    (backlink, cumulative)
}

/// The last beat: the latest local maximum of the cumulative score that
/// reaches half the median of all its local maxima.
fn last_beat(cumulative: &[f64]) -> usize {
    let n = cumulative.len();
    let is_max = |i: usize| match i {
        0 => false,
        i if i == n - 1 => cumulative[i] > cumulative[i - 1],
        i => cumulative[i] > cumulative[i - 1] && cumulative[i] >= cumulative[i + 1],
    };
    let mut maxima: Vec<f64> = (0..n).filter(|&i| is_max(i)).map(|i| cumulative[i]).collect();
    maxima.sort_by(f64::total_cmp);
    let median = match maxima.len() {
        0 => f64::NAN,
        m if m % 2 == 1 => maxima[m / 2],
        m => (maxima[m / 2 - 1] + maxima[m / 2]) / 2.0,
    };
    let threshold = 0.5 * median;
    (0..n).rev().find(|&i| is_max(i) && cumulative[i] >= threshold).unwrap_or(n - 1)
}

/// Clears weak beats at the edges: frames from either end whose local score
/// is at most half the RMS of the smoothed beat scores (librosa's slicing of
/// the smoothing included: `n_beats + 2` terms).
fn trim_beats(local: &[f64], beats: &mut [bool], trim: bool) {
    let n = local.len();
    let threshold = if trim {
        let scores: Vec<f64> = (0..n).filter(|&i| beats[i]).map(|i| local[i]).collect();
        // np.convolve(scores, hanning(5) = [0, .5, 1, .5, 0])[2 : n + 2].
        let w = [0.0, 0.5, 1.0, 0.5, 0.0];
        let full: Vec<f64> = (0..scores.len() + 4)
            .map(|j| (0..5).filter(|&k| j >= k && j - k < scores.len()).map(|k| w[k] * scores[j - k]).sum())
            .collect();
        let smooth = &full[2.min(full.len())..(n + 2).min(full.len())];
        0.5 * (smooth.iter().map(|v| v * v).sum::<f64>() / smooth.len() as f64).sqrt()
    } else {
        0.0
    };
    for i in 0..n {
        if local[i] > threshold {
            break;
        }
        beats[i] = false;
    }
    for i in (0..n).rev() {
        if local[i] > threshold {
            break;
        }
        beats[i] = false;
    }
}

/// `np.round`: half to even.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r }
}

/// Beat frames of an onset envelope at `bpm` (librosa `beat_track` after its
/// tempo estimate; `frame_rate = sr / hop`). Empty for an all-zero envelope.
pub fn track_beats(envelope: &[f32], bpm: f64, frame_rate: f64, params: &BeatParams) -> Vec<usize> {
    if envelope.iter().all(|&e| e == 0.0) || bpm.is_nan() || bpm <= 0.0 {
        return Vec::new();
    }
    let period = round_half_even(frame_rate * 60.0 / bpm);
    let local = local_score(&normalize_onsets(envelope), period as usize);
    let (backlink, cumulative) = dynamic_programme(&local, period, params.tightness);
    let mut beats = vec![false; envelope.len()];
    let mut at = last_beat(&cumulative) as isize;
    while at >= 0 {
        beats[at as usize] = true;
        at = backlink[at as usize];
    }
    trim_beats(&local, &mut beats, params.trim);
    (0..beats.len()).filter(|&i| beats[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_numpy_sums() {
        assert_eq!(round_half_even(12.5), 12.0);
        assert_eq!(round_half_even(13.5), 14.0);
        assert_eq!(round_half_even(7.4), 7.0);
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let exact: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((pairwise_sum(&x) as f64 - exact).abs() < 1e-4);
        assert_eq!(pairwise_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn local_score_skips_the_first_frame() {
        let mut x = vec![0f32; 20];
        x[0] = 100.0;
        assert!(local_score(&x, 4).iter().all(|&v| v == 0.0));
        x[10] = 1.0;
        let ls = local_score(&x, 4);
        assert_eq!(ls[10], 1.0);
        assert!(ls[9] < 1.0 && ls[9] > 0.0 && ls[9] == ls[11]);
    }

    #[test]
    fn a_regular_pulse_gives_beats_one_period_apart() {
        let envelope: Vec<f32> = (0..400).map(|i| if i % 16 == 5 { 1.0 } else { 0.01 }).collect();
        let beats = track_beats(&envelope, 1875.0 / 16.0, 31.25, &BeatParams::default());
        assert!(beats.len() > 15, "{beats:?}");
        // Every beat but the last (librosa's last-beat rule may end it early) sits on a pulse.
        let interior = &beats[..beats.len() - 1];
        assert!(interior.windows(2).all(|w| w[1] - w[0] == 16), "{beats:?}");
        assert!(interior.iter().all(|b| b % 16 == 5), "{beats:?}");
        assert!(track_beats(&[0.0; 100], 120.0, 31.25, &BeatParams::default()).is_empty());
    }
}
