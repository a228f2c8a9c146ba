//! Mel filterbank (Slaney scale and area normalisation, librosa
//! `filters.mel(htk=False, norm='slaney')`; spec §2) and `power_to_db` (§4).

/// Hz → mel on the Slaney scale: linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz { min_log_mel + (hz / min_log_hz).ln() / logstep } else { hz / f_sp }
}

/// Mel → Hz on the Slaney scale (inverse of [`hz_to_mel`]).
pub fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel { min_log_hz * (logstep * (mel - min_log_mel)).exp() } else { f_sp * mel }
}

/// Bins per block of the mel dot products (an SSE register of f32).
const LANES: usize = 4;

/// Triangular mel filters over the bins of an `n_fft` FFT, stored sparsely
/// (each filter's non-zero bins), with librosa's f32 weights bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub struct MelFilterbank {
    n_bins: usize,
    /// Per band: first non-zero bin and its weights.
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelFilterbank {
    /// librosa `filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)`.
    pub fn new(sr: u32, n_fft: usize, n_mels: usize, fmin: f64, fmax: f64) -> MelFilterbank {
        let n_bins = n_fft / 2 + 1;
        // np.fft.rfftfreq(n_fft, 1/sr): k · (1 / (n_fft · (1/sr))).
        let bin_hz = 1.0 / (n_fft as f64 * (1.0 / sr as f64));
        let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * bin_hz).collect();
        // np.linspace(mel(fmin), mel(fmax), n_mels + 2): i · step + start, last point exact.
        let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
        let step = (hi - lo) / (n_mels + 1) as f64;
        let edges: Vec<f64> = (0..n_mels + 2)
            .map(|i| if i == n_mels + 1 { mel_to_hz(hi) } else { mel_to_hz(i as f64 * step + lo) })
            .collect();
        let bands = (0..n_mels)
            .map(|b| {
                let (f0, f1, f2) = (edges[b], edges[b + 1], edges[b + 2]);
                let enorm = 2.0 / (f2 - f0);
                let weights: Vec<f32> = fft_freqs
                    .iter()
                    .map(|&f| {
                        let lower = -(f0 - f) / (f1 - f0);
                        let upper = (f2 - f) / (f2 - f1);
                        // Stored as f32, then normalised in f64 and stored again.
                        let w = 0f64.max(lower.min(upper)) as f32;
                        (w as f64 * enorm) as f32
                    })
                    .collect();
                let first = weights.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = weights.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                // Widened with zero weights to whole blocks of LANES bins (at the
                // end, or at the start near the top of the spectrum) so the dot
                // product needs no remainder loop; a zero weight adds exactly 0.
                let width = (last - first).next_multiple_of(LANES).min(n_bins);
                let first = first.min(n_bins - width);
                (first, weights[first..first + width].to_vec())
            })
            .collect();
        MelFilterbank { n_bins, bands }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    pub fn n_bins(&self) -> usize {
        self.n_bins
    }

    /// Weight of FFT bin `k` in band `b`.
    pub fn weight(&self, b: usize, k: usize) -> f32 {
        let (first, weights) = &self.bands[b];
        k.checked_sub(*first).and_then(|i| weights.get(i)).copied().unwrap_or(0.0)
    }

    /// Mel energies of one power frame: `out[b] = Σ_k W[b,k]·power[k]`, summed
    /// in LANES interleaved partial sums (SIMD). librosa's BLAS sums in its own
    /// order too; the spec's §12 allows 1e-5 of the frame's maximum.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        debug_assert_eq!(power.len(), self.n_bins);
        for ((first, weights), dst) in self.bands.iter().zip(out.iter_mut()) {
            let bins = &power[*first..*first + weights.len()];
            let mut partial = [0f32; LANES];
            for (w, p) in weights.chunks_exact(LANES).zip(bins.chunks_exact(LANES)) {
                for i in 0..LANES {
                    partial[i] += w[i] * p[i];
                }
            }
            // Width below LANES only when the whole spectrum is narrower.
            let rest = weights.chunks_exact(LANES).remainder().iter().zip(bins.chunks_exact(LANES).remainder());
            *dst = partial.iter().sum::<f32>() + rest.map(|(&w, &p)| w * p).sum::<f32>();
        }
    }
}

/// `power_to_db` parameters (librosa names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DbParams {
    /// Reference power: `10·log10(S / ref)`.
    pub reference: f32,
    /// Floor on `S` and `ref` before the logarithm.
    pub amin: f32,
    /// Clamp to `max − top_db` (over everything given at once); `None` disables it.
    pub top_db: Option<f32>,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams { reference: 1.0, amin: 1e-10, top_db: Some(80.0) }
    }
}

/// `10·log10(max(amin, s)) − 10·log10(max(amin, ref))`, in f32, without the clamp.
pub fn power_to_db_value(s: f32, params: &DbParams) -> f32 {
    let mut value = [s];
    power_to_db_unclamped(&mut value, params);
    value[0]
}

/// [`power_to_db_value`] of each of `values`, in place.
pub fn power_to_db_unclamped(values: &mut [f32], params: &DbParams) {
    let offset = 10.0 * params.amin.max(params.reference).log10();
    if params.amin >= f32::MIN_POSITIVE {
        // Every max(amin, s) is a positive normal number: the vectorisable logarithm applies.
        values.iter_mut().for_each(|v| *v = decibels(params.amin.max(*v)) - offset);
    } else {
        values.iter_mut().for_each(|v| *v = 10.0 * params.amin.max(*v).log10() - offset);
    }
}

/// librosa `power_to_db` over a whole array: the `top_db` clamp uses the
/// maximum over all of `values` (spec §4).
pub fn power_to_db(values: &mut [f32], params: &DbParams) {
    power_to_db_unclamped(values, params);
    if let Some(top_db) = params.top_db {
        let floor = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) - top_db;
        values.iter_mut().for_each(|v| *v = v.max(floor));
    }
}

/// `10·log10(x)` for a positive normal `x`, within 2.5 ulp of the exact
/// value (≤ 1e-5 dB over librosa's range; the spec's §12 allows 5e-3 dB, and
/// numpy's own `log10` is not correctly rounded either). Branch-free (Cephes'
/// `logf`: exponent and mantissa from the bits, a polynomial for the
/// mantissa), so a loop over it vectorises, which libm's `log10f` does not.
fn decibels(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = 2^e·m with m in [1, 2), then m in [√½, √2) so that m − 1 is small.
    let exponent = ((bits >> 23) as i32 - 127) as f32;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let high = mantissa > std::f32::consts::SQRT_2;
    let f = if high { 0.5 * mantissa } else { mantissa } - 1.0;
    let e = if high { exponent + 1.0 } else { exponent };
    let z = f * f;
    let mut y = 7.037_683_6e-2;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        y = y * f + c;
    }
    y = y * f * z;
    // ln 2 split in two (0.693359375 + −2.12194440e-4; the first is exact in f32) keeps e·ln 2 exact enough.
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    let ln = f + y + 0.693_359_4 * e;
    ln * (10.0 * std::f32::consts::LOG10_E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_values_from_the_spec() {
        assert!((hz_to_mel(8000.0) - 45.245640471925).abs() < 1e-9);
        assert_eq!(hz_to_mel(600.0), 9.0);
        for hz in [0.0, 500.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
    }

    #[test]
    fn filterbank_shape_from_the_spec() {
        let fb = MelFilterbank::new(16_000, 2048, 128, 0.0, 8000.0);
        assert_eq!((fb.n_mels(), fb.n_bins()), (128, 1025));
        // DC and Nyquist get no weight; band 0 spans bins 1..5, band 127 bins 976..1023.
        assert!((0..128).all(|b| fb.weight(b, 0) == 0.0 && fb.weight(b, 1024) == 0.0));
        assert!(fb.weight(0, 1) > 0.0 && fb.weight(0, 5) > 0.0 && fb.weight(0, 6) == 0.0);
        assert!(fb.weight(127, 975) == 0.0 && fb.weight(127, 976) > 0.0 && fb.weight(127, 1023) > 0.0);
        for b in 0..128 {
            let sum: f32 = (0..1025).map(|k| fb.weight(b, k)).sum();
            assert!((0.1267..=0.1293).contains(&sum), "band {b}: row sum {sum}");
        }
    }

    #[test]
    fn db_clamps_to_the_global_max() {
        let mut v = vec![1.0, 1e-3, 0.0, 100.0];
        power_to_db(&mut v, &DbParams { top_db: Some(30.0), ..Default::default() });
        let want = [0.0, -10.0, -10.0, 20.0];
        assert!(v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-5), "{v:?}");
        let mut silent = vec![0.0; 3];
        power_to_db(&mut silent, &DbParams::default());
        assert_eq!(silent, vec![-100.0; 3]);
    }

    #[test]
    fn decibels_are_within_a_few_ulp() {
        let mut x = 1e-10f32;
        while x < 1e10 {
            let exact = 10.0 * (x as f64).log10();
            let got = decibels(x) as f64;
            let ulp = (exact.abs() as f32).max(1e-3).to_bits();
            let ulp = (f32::from_bits(ulp + 1) - f32::from_bits(ulp)) as f64;
            assert!((got - exact).abs() <= 2.5 * ulp, "{x}: {got} vs {exact}");
            x *= 1.0137;
        }
        assert_eq!(decibels(1.0), 0.0);
    }
}
