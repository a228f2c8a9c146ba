//! Autocorrelation tempogram (librosa `feature.tempogram`, spec §8) and
//! tempo estimation with the log-normal prior (`feature.tempo`, §9).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use super::stft::periodic_hann;

/// Autocorrelation of windows of one sequence, by FFT (any length ≥ 2W−1 gives the same result).
struct Autocorrelator {
    forward: Arc<dyn RealToComplex<f64>>,
    inverse: Arc<dyn ComplexToReal<f64>>,
    time: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
}

impl Autocorrelator {
    fn new(win_length: usize) -> Autocorrelator {
        let n = next_fast_len(2 * win_length - 1);
        let mut planner = RealFftPlanner::<f64>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        Autocorrelator { time: forward.make_input_vec(), spectrum: forward.make_output_vec(), forward, inverse }
    }

    /// `ac[k] = Σ_j u[j]·u[j+k]` for k < u.len().
    fn autocorrelate(&mut self, u: &[f64], ac: &mut [f64]) {
        let n = self.time.len();
        self.time[..u.len()].copy_from_slice(u);
        self.time[u.len()..].fill(0.0);
        self.forward.process(&mut self.time, &mut self.spectrum).expect("planned sizes");
        for c in self.spectrum.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        self.inverse.process(&mut self.spectrum, &mut self.time).expect("planned sizes");
        for (dst, &v) in ac.iter_mut().zip(&self.time) {
            *dst = v / n as f64;
        }
    }
}

/// Smallest length ≥ `n` whose only prime factors are 2, 3 and 5 (fast FFT sizes).
fn next_fast_len(n: usize) -> usize {
    (n..)
        .find(|&m| {
            let mut m = m;
            for p in [2, 3, 5] {
                while m % p == 0 {
                    m /= p;
                }
            }
            m == 1
        })
        .expect("there is always a larger 5-smooth number")
}

/// Tempogram: `win_length` rows (lag in frames) × one column per envelope
/// frame, column-major (`column t` is `data[t * win_length..][..win_length]`),
/// each column normalised by its maximum absolute value.
#[derive(Clone, Debug, PartialEq)]
pub struct Tempogram {
    pub win_length: usize,
    pub data: Vec<f64>,
}

impl Tempogram {
    pub fn n_frames(&self) -> usize {
        self.data.len() / self.win_length
    }

    pub fn column(&self, t: usize) -> &[f64] {
        &self.data[t * self.win_length..(t + 1) * self.win_length]
    }

    /// Mean over frames of each lag (`np.mean(tg, axis=-1)`).
    pub fn mean_over_time(&self) -> Vec<f64> {
        let n = self.n_frames();
        (0..self.win_length)
            .map(|k| (0..n).map(|t| self.data[t * self.win_length + k]).sum::<f64>() / n as f64)
            .collect()
    }
}

/// librosa `feature.tempogram(onset_envelope=envelope, win_length=W)`
/// (`center=True`, Hann window, `norm=inf`): the envelope is padded with a
/// linear ramp to zero of `W/2` frames each side, windowed around each frame,
/// autocorrelated, and each column divided by its maximum (spec §8).
pub fn tempogram(envelope: &[f32], win_length: usize) -> Tempogram {
    assert!(win_length >= 1, "win_length must be positive");
    let n = envelope.len();
    let half = win_length / 2;
    let window = periodic_hann(win_length);
    // np.pad(mode='linear_ramp', end_values=0): a ramp from 0 to the edge value, in f32.
    let ramp = |edge: f32, j: usize| (j as f64 * (edge as f64 / half as f64)) as f32;
    let mut padded = Vec::with_capacity(n + 2 * half);
    if let (Some(&first), Some(&last)) = (envelope.first(), envelope.last()) {
        padded.extend((0..half).map(|j| ramp(first, j)));
        padded.extend_from_slice(envelope);
        // The right ramp is the same ramp reversed: edge·(h−1)/h, …, edge/h, 0.
        padded.extend((0..half).map(|j| ramp(last, half - 1 - j)));
    }
    let mut correlator = Autocorrelator::new(win_length);
    let mut data = vec![0f64; n * win_length];
    let mut u = vec![0f64; win_length];
    for (t, column) in data.chunks_exact_mut(win_length).enumerate() {
        for (j, dst) in u.iter_mut().enumerate() {
            *dst = padded[t + j] as f64 * window[j];
        }
        correlator.autocorrelate(&u, column);
        let max = column.iter().fold(0f64, |m, v| m.max(v.abs()));
        if max >= f64::MIN_POSITIVE {
            column.iter_mut().for_each(|v| *v /= max);
        }
    }
    Tempogram { win_length, data }
}

/// `feature.tempo` parameters (librosa names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TempoParams {
    /// Centre of the log-normal prior, in BPM.
    pub start_bpm: f64,
    /// Width of the prior, in octaves.
    pub std_bpm: f64,
    /// Autocorrelation window, in seconds.
    pub ac_size: f64,
    /// Tempi at or above this get no weight.
    pub max_tempo: Option<f64>,
}

impl Default for TempoParams {
    fn default() -> Self {
        TempoParams { start_bpm: 120.0, std_bpm: 1.0, ac_size: 8.0, max_tempo: Some(320.0) }
    }
}

/// BPM of each tempogram lag: `60·sr / (hop·k)`, with lag 0 infinite.
pub fn tempo_frequencies(n_bins: usize, sr: u32, hop_length: usize) -> Vec<f64> {
    (0..n_bins)
        .map(|k| if k == 0 { f64::INFINITY } else { 60.0 * sr as f64 / (hop_length as f64 * k as f64) })
        .collect()
}

/// librosa `feature.tempo(onset_envelope=envelope)` (spec §9): the lag `k`
/// maximising `log1p(1e6·m[k]) − ½((log2 bpm[k] − log2 start_bpm) / std_bpm)²`,
/// where `m` is the tempogram (window `ac_size`) averaged over time; lags
/// faster than `max_tempo` are excluded. Returns the BPM of that lag.
pub fn tempo(envelope: &[f32], sr: u32, hop_length: usize, params: &TempoParams) -> f64 {
    // time_to_frames: ⌊⌊ac_size·sr⌋ / hop⌋.
    let win_length = ((params.ac_size * sr as f64) as usize / hop_length).max(1);
    let mean = tempogram(envelope, win_length).mean_over_time();
    let bpms = tempo_frequencies(win_length, sr, hop_length);
    let first_allowed = params.max_tempo.map_or(0, |max| bpms.iter().position(|&b| b < max).unwrap_or(0));
    let mut best = (f64::NEG_INFINITY, 0);
    for (k, (&m, &bpm)) in mean.iter().zip(&bpms).enumerate() {
        let log_prior = if k < first_allowed {
            f64::NEG_INFINITY
        } else {
            -0.5 * ((bpm.log2() - params.start_bpm.log2()) / params.std_bpm).powi(2)
        };
        let score = (1e6 * m).ln_1p() + log_prior;
        // First maximum wins, as np.argmax.
        if score > best.0 {
            best = (score, k);
        }
    }
    bpms[best.1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocorrelation_matches_the_direct_sum() {
        let u: Vec<f64> = (0..37).map(|i| ((i * 13 % 7) as f64) - 3.0).collect();
        let mut ac = vec![0.0; 37];
        Autocorrelator::new(37).autocorrelate(&u, &mut ac);
        for k in 0..37 {
            let direct: f64 = (0..37 - k).map(|j| u[j] * u[j + k]).sum();
            assert!((ac[k] - direct).abs() < 1e-9, "lag {k}: {} vs {direct}", ac[k]);
        }
    }

    #[test]
    fn periodic_envelope_peaks_at_its_period() {
        // A pulse every 20 frames: 93.75 BPM at 16 kHz / 512.
        let envelope: Vec<f32> = (0..600).map(|i| if i % 20 == 3 { 1.0 } else { 0.0 }).collect();
        let tg = tempogram(&envelope, 384);
        let column = tg.column(300);
        assert_eq!(column[0], 1.0);
        let best = (10..60).max_by(|&a, &b| column[a].total_cmp(&column[b])).unwrap();
        assert_eq!(best, 20);
        assert_eq!(tempo(&envelope, 16_000, 512, &TempoParams::default()), 1875.0 / 20.0);
    }

    #[test]
    fn silent_columns_stay_zero() {
        let tg = tempogram(&[0.0; 50], 16);
        assert!(tg.data.iter().all(|&v| v == 0.0));
        assert_eq!(tg.n_frames(), 50);
    }
}
