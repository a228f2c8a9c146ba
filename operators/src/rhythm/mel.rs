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
                (first, weights[first..last].to_vec())
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

    /// Mel energies of one power frame: `out[b] = Σ_k W[b,k]·power[k]`.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        debug_assert_eq!(power.len(), self.n_bins);
        for ((first, weights), dst) in self.bands.iter().zip(out.iter_mut()) {
            *dst = weights.iter().zip(&power[*first..]).map(|(&w, &p)| w * p).sum();
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
    let offset = 10.0 * params.amin.max(params.reference).log10();
    10.0 * params.amin.max(s).log10() - offset
}

/// librosa `power_to_db` over a whole array: the `top_db` clamp uses the
/// maximum over all of `values` (spec §4).
pub fn power_to_db(values: &mut [f32], params: &DbParams) {
    for v in values.iter_mut() {
        *v = power_to_db_value(*v, params);
    }
    if let Some(top_db) = params.top_db {
        let floor = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) - top_db;
        values.iter_mut().for_each(|v| *v = v.max(floor));
    }
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
        assert_eq!(v, vec![0.0, -10.0, -10.0, 20.0]);
        let mut silent = vec![0.0; 3];
        power_to_db(&mut silent, &DbParams::default());
        assert_eq!(silent, vec![-100.0; 3]);
    }
}
