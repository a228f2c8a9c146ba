//! Autocorrelation tempogram (librosa `feature.tempogram`, spec §8) and
//! tempo estimation with the log-normal prior (`feature.tempo`, §9).

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::stft::periodic_hann;

/// Autocorrelations of windows, two at a time, by FFT. librosa works in
/// f64; we transform in f32, which keeps each normalised column within about
/// 1e-6 of librosa's (the spec's §12 allows 1e-5) at half the cost, and the
/// parity test holds the tempo argmax identical.
///
/// Two real windows `a` and `b` go in as one complex sequence `a + i·b`; with
/// Z its spectrum, `|Z[f] + conj Z[−f]|²` and `|Z[f] − conj Z[−f]|²` are 4×
/// the power spectra of `a` and `b`, both real and even, so one inverse FFT of
/// `P_a + i·P_b` gives both autocorrelations, as its real and imaginary parts.
struct Autocorrelator {
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    buffer: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Autocorrelator {
    fn new(win_length: usize) -> Autocorrelator {
        let n = fft_len(win_length);
        let mut planner = FftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(n);
        let inverse = planner.plan_fft_inverse(n);
        let scratch_len = forward.get_inplace_scratch_len().max(inverse.get_inplace_scratch_len());
        Autocorrelator {
            buffer: vec![Complex::default(); n],
            scratch: vec![Complex::default(); scratch_len],
            forward,
            inverse,
        }
    }

    /// The two windows to transform, `a` as real and `b` as imaginary parts:
    /// the first `len` values of the FFT input, the rest zero, to be filled by the caller.
    fn input(&mut self, len: usize) -> &mut [Complex<f32>] {
        self.buffer[len..].fill(Complex::default());
        &mut self.buffer[..len]
    }

    /// Replaces the windows placed by [`Self::input`] with their power
    /// spectra, `a`'s as real and `b`'s as imaginary parts, both scaled by 4.
    fn power_spectra(&mut self) {
        let n = self.buffer.len();
        self.forward.process_with_scratch(&mut self.buffer, &mut self.scratch);
        let powers = |z: Complex<f32>, mirror: Complex<f32>| {
            let sum = Complex::new(z.re + mirror.re, z.im - mirror.im);
            let difference = Complex::new(z.re - mirror.re, z.im + mirror.im);
            Complex::new(sum.norm_sqr(), difference.norm_sqr())
        };
        // Bins f and N−f hold the same value: f = 0 and N/2 pair with
        // themselves, the others LANES at a time in fixed-size arrays (read
        // forward and backward), which the compiler turns into SIMD.
        const LANES: usize = 4;
        self.buffer[0] = powers(self.buffer[0], self.buffer[0]);
        let pairs = (n - 1) / 2;
        let (head, tail) = self.buffer.split_at_mut(n - pairs);
        let (lower, upper) = (&mut head[1..=pairs], &mut tail[..pairs]);
        for (low, high) in lower.chunks_exact_mut(LANES).zip(upper.rchunks_exact_mut(LANES)) {
            let mut power = [Complex::default(); LANES];
            for i in 0..LANES {
                power[i] = powers(low[i], high[LANES - 1 - i]);
            }
            low.copy_from_slice(&power);
            power.reverse();
            high.copy_from_slice(&power);
        }
        let done = pairs - pairs % LANES;
        for f in done + 1..=pairs {
            let power = powers(self.buffer[f], self.buffer[n - f]);
            (self.buffer[f], self.buffer[n - f]) = (power, power);
        }
        if n.is_multiple_of(2) {
            self.buffer[n / 2] = powers(self.buffer[n / 2], self.buffer[n / 2]);
        }
    }

    /// The power spectra of [`Self::power_spectra`], `0..=N/2` (the rest mirrors them).
    fn half_spectrum(&self) -> &[Complex<f32>] {
        &self.buffer[..=self.buffer.len() / 2]
    }

    /// The autocorrelations of the windows placed by [`Self::input`], lags
    /// `0..ac_a.len()`, both scaled by the same factor (4× the FFT length;
    /// the normalisation by the maximum removes it).
    fn autocorrelate(&mut self, ac_a: &mut [f32], ac_b: &mut [f32]) {
        self.power_spectra();
        self.inverse.process_with_scratch(&mut self.buffer, &mut self.scratch);
        let lags = ac_a.len();
        for ((a, b), c) in ac_a.iter_mut().zip(&mut ac_b[..lags]).zip(&self.buffer[..lags]) {
            (*a, *b) = (c.re, c.im);
        }
    }
}

/// The FFT length for windows of `win_length`: any length ≥ 2W−1 gives the
/// same autocorrelation (librosa takes `next_fast_len`, 768 for 384 and 500
/// for 250); we take the smallest of the form 2^a·3^b, which our FFT does
/// fastest (768 and 512).
fn fft_len(win_length: usize) -> usize {
    let least = (2 * win_length).saturating_sub(1).max(1);
    (least..)
        .find(|&m| {
            let mut m = m;
            for p in [2, 3] {
                while m % p == 0 {
                    m /= p;
                }
            }
            m == 1
        })
        .expect("there is always a larger 3-smooth number")
}

/// Tempogram: `win_length` rows (lag in frames) × one column per envelope
/// frame, column-major (`column t` is `data[t * win_length..][..win_length]`),
/// each column normalised by its maximum absolute value. librosa returns
/// f64; ours are f32 values (the autocorrelations are f32 FFTs), stored as such.
#[derive(Clone, Debug, PartialEq)]
pub struct Tempogram {
    pub win_length: usize,
    pub data: Vec<f32>,
}

impl Tempogram {
    pub fn n_frames(&self) -> usize {
        self.data.len() / self.win_length
    }

    pub fn column(&self, t: usize) -> &[f32] {
        &self.data[t * self.win_length..(t + 1) * self.win_length]
    }

    /// Mean over frames of each lag (`np.mean(tg, axis=-1)`), summed in f64.
    pub fn mean_over_time(&self) -> Vec<f64> {
        let mut sum = vec![0f64; self.win_length];
        for column in self.data.chunks_exact(self.win_length) {
            sum.iter_mut().zip(column).for_each(|(s, &v)| *s += v as f64);
        }
        sum.iter().map(|&s| s / self.n_frames() as f64).collect()
    }
}

/// librosa `feature.tempogram(onset_envelope=envelope, win_length=W)`
/// (`center=True`, Hann window, `norm=inf`): the envelope is padded with a
/// linear ramp to zero of `W/2` frames each side, windowed around each frame,
/// autocorrelated, and each column divided by its maximum (spec §8).
pub fn tempogram(envelope: &[f32], win_length: usize) -> Tempogram {
    let n = envelope.len();
    let mut data = vec![0f32; n * win_length];
    let (mut ac_a, mut ac_b) = (vec![0f32; win_length], vec![0f32; win_length]);
    for_each_window_pair(envelope, win_length, |t, nonzero, correlator| {
        correlator.autocorrelate(&mut ac_a, &mut ac_b);
        // A zero window must give a zero column, not its partner's rounding.
        for (column, ac, nonzero) in [(t, &ac_a, nonzero[0]), (t + 1, &ac_b, nonzero[1])] {
            if !nonzero || column >= n {
                continue;
            }
            let scale = 1.0 / ac.iter().fold(0f32, |m, v| m.max(v.abs()));
            let column = &mut data[column * win_length..(column + 1) * win_length];
            column.iter_mut().zip(ac).for_each(|(dst, &v)| *dst = v * scale);
        }
    });
    Tempogram { win_length, data }
}

/// The tempogram averaged over time (`np.mean(tempogram(…), axis=-1)`),
/// all that `tempo` needs of it, at half the tempogram's cost. A column's
/// maximum is its lag-0 value (no lag of an autocorrelation exceeds it), and
/// that is the sum of the window's power spectrum; the inverse FFT is
/// linear, so the mean of the normalised columns is one inverse FFT of the
/// mean of the spectra each divided by its sum, instead of one per column.
pub fn tempogram_mean(envelope: &[f32], win_length: usize) -> Vec<f64> {
    let n_fft = fft_len(win_length);
    // Bins 0..=N/2 of the summed normalised spectra (even: the rest mirror them).
    let mut spectrum_sum = vec![0f64; n_fft / 2 + 1];
    for_each_window_pair(envelope, win_length, |t, nonzero, correlator| {
        correlator.power_spectra();
        let half = correlator.half_spectrum();
        // Σ over all N bins; bin f holds the value of bin min(f, N − f).
        let total =
            |part: fn(&Complex<f32>) -> f32| (0..n_fft).map(|f| part(&half[f.min(n_fft - f)]) as f64).sum::<f64>();
        let a_scale = if nonzero[0] { 1.0 / total(|c| c.re) } else { 0.0 };
        let b_scale = if nonzero[1] && t + 1 < envelope.len() { 1.0 / total(|c| c.im) } else { 0.0 };
        for (sum, c) in spectrum_sum.iter_mut().zip(half) {
            *sum += c.re as f64 * a_scale + c.im as f64 * b_scale;
        }
    });
    // One inverse FFT of the summed spectrum (real and even, so its
    // transform is real): Σ_t ac_t[k] / ac_t[0] for each lag k.
    let mut spectrum: Vec<Complex<f64>> =
        (0..n_fft).map(|f| Complex::new(spectrum_sum[f.min(n_fft - f)], 0.0)).collect();
    FftPlanner::<f64>::new().plan_fft_inverse(n_fft).process(&mut spectrum);
    spectrum[..win_length].iter().map(|c| c.re / envelope.len() as f64).collect()
}

/// Calls `visit(t, [a nonzero, b nonzero], correlator)` with the windows of
/// columns `t` and `t + 1` placed in the correlator's input (`t` even; past
/// the last column, a zero window), skipping pairs that are both zero: all-zero
/// columns stay zero, as librosa leaves columns whose maximum is below
/// f64's tiny.
fn for_each_window_pair(
    envelope: &[f32],
    win_length: usize,
    mut visit: impl FnMut(usize, [bool; 2], &mut Autocorrelator),
) {
    assert!(win_length >= 1, "win_length must be positive");
    let n = envelope.len();
    let half = win_length / 2;
    // np.pad(mode='linear_ramp', end_values=0): a ramp from 0 to the edge value, in f32.
    let ramp = |edge: f32, j: usize| (j as f64 * (edge as f64 / half as f64)) as f32;
    let mut padded = Vec::with_capacity(n + 2 * half + 1);
    if let (Some(&first), Some(&last)) = (envelope.first(), envelope.last()) {
        padded.extend((0..half).map(|j| ramp(first, j)));
        padded.extend_from_slice(envelope);
        // The right ramp is the same ramp reversed: edge·(h−1)/h, …, edge/h, 0.
        padded.extend((0..half).map(|j| ramp(last, half - 1 - j)));
    }
    // A zero column past the end to pair an odd last column with.
    padded.resize(n + win_length, 0.0);
    let window: Vec<f32> = periodic_hann(win_length).into_iter().map(|w| w as f32).collect();
    let mut correlator = Autocorrelator::new(win_length);
    for t in (0..n).step_by(2) {
        let (a, b) = (&padded[t..t + win_length], &padded[t + 1..t + 1 + win_length]);
        let u = correlator.input(win_length);
        for (((dst, &x), &y), &w) in u.iter_mut().zip(a).zip(b).zip(&window) {
            *dst = Complex::new(x * w, y * w);
        }
        // Usually decided by the first non-zero window values.
        let a_nonzero = u.iter().any(|c| c.re != 0.0);
        let b_nonzero = u.iter().any(|c| c.im != 0.0);
        if a_nonzero || b_nonzero {
            visit(t, [a_nonzero, b_nonzero], &mut correlator);
        }
    }
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
    let mean = tempogram_mean(envelope, win_length);
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
        let a: Vec<f32> = (0..37).map(|i| ((i * 13 % 7) as f32) - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| ((i * 5 % 11) as f32) * 0.1).collect();
        let mut correlator = Autocorrelator::new(37);
        for (dst, (&x, &y)) in correlator.input(37).iter_mut().zip(a.iter().zip(&b)) {
            *dst = Complex::new(x, y);
        }
        let (mut ac_a, mut ac_b) = (vec![0.0; 37], vec![0.0; 37]);
        correlator.autocorrelate(&mut ac_a, &mut ac_b);
        // Both scaled by 4× the FFT length.
        let scale = 4.0 * fft_len(37) as f32;
        for (u, ac) in [(&a, &ac_a), (&b, &ac_b)] {
            for k in 0..37 {
                let direct: f32 = (0..37 - k).map(|j| u[j] * u[j + k]).sum();
                let got = ac[k] / scale;
                assert!((got - direct).abs() < 1e-3 * (1.0 + direct.abs()), "lag {k}: {got} vs {direct}");
            }
        }
        assert_eq!((fft_len(384), fft_len(250), fft_len(1)), (768, 512, 1));
    }

    #[test]
    fn periodic_envelope_peaks_at_its_period() {
        // A pulse every 20 frames: 93.75 BPM at 16 kHz / 512.
        let envelope: Vec<f32> = (0..600).map(|i| if i % 20 == 3 { 1.0 } else { 0.0 }).collect();
        let tg = tempogram(&envelope, 384);
        let column = tg.column(300);
        assert!((column[0] - 1.0).abs() < 1e-6);
        let best = (10..60).max_by(|&a, &b| column[a].total_cmp(&column[b])).unwrap();
        assert_eq!(best, 20);
        assert_eq!(tempo(&envelope, 16_000, 512, &TempoParams::default()), 1875.0 / 20.0);
    }

    #[test]
    fn mean_of_spectra_equals_mean_of_columns() {
        // Odd and even lengths, a silent stretch (zero columns) and a window
        // length whose FFT is odd (27).
        for (len, win_length) in [(301, 250), (300, 384), (57, 14), (40, 13), (9, 2)] {
            let envelope: Vec<f32> = (0..len)
                .map(|i| if (100..160).contains(&i) { 0.0 } else { ((i * 37 % 23) as f32 * 0.1).powi(2) })
                .collect();
            let direct = tempogram(&envelope, win_length).mean_over_time();
            let fast = tempogram_mean(&envelope, win_length);
            assert_eq!(fast.len(), win_length);
            for (k, (a, b)) in fast.iter().zip(&direct).enumerate() {
                assert!((a - b).abs() < 2e-6, "{len}/{win_length} lag {k}: {a} vs {b}");
            }
        }
        assert_eq!((fft_len(13), fft_len(2)), (27, 3));
    }

    #[test]
    fn silent_columns_stay_zero() {
        let tg = tempogram(&[0.0; 50], 16);
        assert!(tg.data.iter().all(|&v| v == 0.0));
        assert_eq!(tg.n_frames(), 50);
    }
}
