//! Power spectrogram as librosa 0.11 computes it (`stft`, `center=True`,
//! `pad_mode='constant'`, periodic Hann; spec §1), in a streaming form: the
//! whole-signal form is one push and a finish.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Frames of `n_bins` values each, time-major: frame `t` is `data[t * n_bins..][..n_bins]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frames {
    pub n_bins: usize,
    pub data: Vec<f32>,
}

impl Frames {
    pub fn new(n_bins: usize) -> Frames {
        Frames { n_bins, data: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.n_bins).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.n_bins..(t + 1) * self.n_bins]
    }

    pub fn iter(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.n_bins.max(1))
    }

    pub fn push(&mut self, frame: &[f32]) {
        debug_assert_eq!(frame.len(), self.n_bins);
        self.data.extend_from_slice(frame);
    }

    /// Value of bin `f` in frame `t`.
    pub fn at(&self, f: usize, t: usize) -> f32 {
        self.data[t * self.n_bins + f]
    }
}

/// Number of STFT frames librosa gives a signal of `n_samples` (`center=True`).
pub fn frame_count(n_samples: usize, hop_length: usize) -> usize {
    1 + n_samples / hop_length
}

/// Periodic Hann window of length `n` (scipy `get_window('hann', n, fftbins=True)`), in f64.
pub fn periodic_hann(n: usize) -> Vec<f64> {
    // scipy's general cosine form, `0.5 + 0.5·cos(−π + 2πi/n)`, for the same last bits.
    let step = std::f64::consts::TAU / n as f64;
    (0..n).map(|i| 0.5 + 0.5 * (i as f64 * step - std::f64::consts::PI).cos()).collect()
}

/// `|X[k]|²` of one windowed frame. librosa windows in f64, runs the FFT in
/// f64 and stores complex64; we window and transform in f32 (twice the SIMD
/// lanes, half the memory traffic) and square in f32. The difference is about
/// 1e-7 of each frame's peak power, inside the spec's §12 tolerances, and the
/// parity test holds the discrete outputs (onsets, tempo, beats) identical.
///
/// An even-length real frame goes through a complex FFT of half its length
/// (even samples as real parts, odd ones as imaginary parts), and the
/// spectrum is untangled straight into power: no complex spectrum is stored.
#[derive(Clone)]
pub struct PowerFft {
    window: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
    buffer: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// `e^{−2πik/n_fft}` for k = 0..=n_fft/4.
    twiddles: Vec<Complex<f32>>,
}

impl std::fmt::Debug for PowerFft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerFft").field("n_fft", &self.window.len()).finish_non_exhaustive()
    }
}

impl PowerFft {
    pub fn new(n_fft: usize) -> PowerFft {
        // Odd lengths (never librosa's defaults) take a full-length complex FFT.
        let fft_len = if n_fft.is_multiple_of(2) { n_fft / 2 } else { n_fft };
        let fft = FftPlanner::<f32>::new().plan_fft_forward(fft_len);
        let twiddles = (0..=n_fft / 4)
            .map(|k| {
                let phase = -std::f64::consts::TAU * k as f64 / n_fft as f64;
                Complex::new(phase.cos() as f32, phase.sin() as f32)
            })
            .collect();
        PowerFft {
            window: periodic_hann(n_fft).into_iter().map(|w| w as f32).collect(),
            buffer: vec![Complex::default(); fft_len],
            scratch: vec![Complex::default(); fft.get_inplace_scratch_len()],
            fft,
            twiddles,
        }
    }

    pub fn n_fft(&self) -> usize {
        self.window.len()
    }

    /// Writes the `n_fft / 2 + 1` power values of `frame` (`n_fft` samples) into `out`.
    pub fn power(&mut self, frame: &[f32], out: &mut [f32]) {
        let n_fft = self.window.len();
        let (frame, window, out) = (&frame[..n_fft], &self.window[..], &mut out[..n_fft / 2 + 1]);
        if n_fft % 2 == 1 {
            for ((dst, &x), &w) in self.buffer.iter_mut().zip(frame).zip(window) {
                *dst = Complex::new(w * x, 0.0);
            }
            self.fft.process_with_scratch(&mut self.buffer, &mut self.scratch);
            out.iter_mut().zip(&self.buffer).for_each(|(dst, c)| *dst = c.norm_sqr());
            return;
        }
        let half = n_fft / 2;
        let pairs = frame.chunks_exact(2).zip(window.chunks_exact(2));
        for (dst, (x, w)) in self.buffer.iter_mut().zip(pairs) {
            *dst = Complex::new(w[0] * x[0], w[1] * x[1]);
        }
        self.fft.process_with_scratch(&mut self.buffer, &mut self.scratch);
        // With Z the half-length spectrum, E = Z[k] + conj Z[M−k] and
        // O = −i·(Z[k] − conj Z[M−k]) are twice the spectra of the even and the
        // odd samples, and 2·X[k] = E + W^k·O, 2·X[M−k] = conj(E − W^k·O):
        // the power is a quarter of their squared magnitudes (exact scaling).
        let z = &self.buffer[..half];
        let dc = z[0];
        out[0] = 0.25 * (2.0 * (dc.re + dc.im)).powi(2);
        out[half] = 0.25 * (2.0 * (dc.re - dc.im)).powi(2);
        // Bins k and M−k for k = 1..=pairs, LANES values of k at a time in
        // fixed-size arrays (read forward and backward), which the compiler
        // turns into SIMD; the few left over one by one.
        const LANES: usize = 8;
        let pairs = (half - 1) / 2;
        let untangle = |a: Complex<f32>, b: Complex<f32>, w: Complex<f32>| {
            let even = Complex::new(a.re + b.re, a.im - b.im);
            let odd = Complex::new(a.im + b.im, b.re - a.re);
            let turned = w * odd;
            (0.25 * (even + turned).norm_sqr(), 0.25 * (even - turned).norm_sqr())
        };
        let mut k = 1;
        while k + LANES <= pairs + 1 {
            let (forward, backward) = (&z[k..k + LANES], &z[half + 1 - k - LANES..=half - k]);
            let twiddles = &self.twiddles[k..k + LANES];
            let (mut low, mut high) = ([0f32; LANES], [0f32; LANES]);
            for i in 0..LANES {
                (low[i], high[i]) = untangle(forward[i], backward[LANES - 1 - i], twiddles[i]);
            }
            out[k..k + LANES].copy_from_slice(&low);
            high.reverse();
            out[half + 1 - k - LANES..=half - k].copy_from_slice(&high);
            k += LANES;
        }
        for k in k..=pairs {
            (out[k], out[half - k]) = untangle(z[k], z[half - k], self.twiddles[k]);
        }
        if half.is_multiple_of(2) {
            // The middle bin pairs with itself: X[M/2] = conj Z[M/2].
            out[half / 2] = z[half / 2].norm_sqr();
        }
    }
}

/// Streaming power STFT: audio in chunks of any size, each frame out as soon
/// as its window (`[hop·t − n_fft/2, hop·t + n_fft/2)`) is complete.
#[derive(Clone, Debug)]
pub struct StftStream {
    fft: PowerFft,
    hop: usize,
    /// The zero-padded signal from padded index `buffer_start` on, up to the
    /// last push: less than a window once the frames it completes are out.
    buffer: Vec<f32>,
    buffer_start: usize,
    next_frame: usize,
    samples_seen: usize,
    /// A window that straddles the buffer and the pushed samples, put together.
    seam: Vec<f32>,
    power: Vec<f32>,
}

impl StftStream {
    pub fn new(n_fft: usize, hop_length: usize) -> StftStream {
        assert!(n_fft >= 2 && hop_length >= 1, "n_fft must be at least 2 and hop_length at least 1");
        StftStream {
            fft: PowerFft::new(n_fft),
            hop: hop_length,
            // Centre padding: n_fft/2 zeros before the first sample.
            buffer: vec![0.0; n_fft / 2],
            buffer_start: 0,
            next_frame: 0,
            samples_seen: 0,
            seam: Vec::with_capacity(n_fft),
            power: vec![0.0; n_fft / 2 + 1],
        }
    }

    pub fn n_bins(&self) -> usize {
        self.fft.n_fft() / 2 + 1
    }

    /// Adds samples; appends the frames they complete to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Frames) {
        self.push_with(samples, |power| out.push(power));
    }

    /// Ends the signal: pads with zeros and emits the remaining frames, for
    /// `1 + n / hop` frames in all.
    pub fn finish(&mut self, out: &mut Frames) {
        self.finish_with(|power| out.push(power));
    }

    /// [`Self::push`], handing each frame's power to `emit` instead of storing it.
    pub fn push_with(&mut self, samples: &[f32], emit: impl FnMut(&[f32])) {
        self.samples_seen += samples.len();
        self.emit_ready(samples, usize::MAX, emit);
    }

    /// [`Self::finish`], handing each frame's power to `emit`.
    pub fn finish_with(&mut self, emit: impl FnMut(&[f32])) {
        let n_fft = self.fft.n_fft();
        let padding = vec![0.0; n_fft - n_fft / 2];
        self.emit_ready(&padding, frame_count(self.samples_seen, self.hop), emit);
    }

    /// Emits the frames (up to `max_frames`) that the buffer followed by
    /// `samples` completes, reading whole windows straight from `samples`,
    /// then keeps what later frames need.
    fn emit_ready(&mut self, samples: &[f32], max_frames: usize, mut emit: impl FnMut(&[f32])) {
        let n_fft = self.fft.n_fft();
        // Padded indices: the buffer starts at `buffer_start`, the samples at `seam`.
        let seam = self.buffer_start + self.buffer.len();
        let end = seam + samples.len();
        while self.next_frame < max_frames {
            let start = self.next_frame * self.hop;
            if start + n_fft > end {
                break;
            }
            let window = if start >= seam {
                &samples[start - seam..start - seam + n_fft]
            } else {
                self.seam.clear();
                self.seam.extend_from_slice(&self.buffer[start - self.buffer_start..]);
                self.seam.extend_from_slice(&samples[..start + n_fft - seam]);
                &self.seam
            };
            self.fft.power(window, &mut self.power);
            emit(&self.power);
            self.next_frame += 1;
        }
        // Keep only what later frames need (nothing before the next frame's start).
        let keep_from = (self.next_frame * self.hop).min(end);
        if keep_from >= seam {
            self.buffer.clear();
            self.buffer.extend_from_slice(&samples[keep_from - seam..]);
        } else {
            self.buffer.drain(..keep_from - self.buffer_start);
            self.buffer.extend_from_slice(samples);
        }
        self.buffer_start = keep_from;
    }
}

/// Power spectrogram of a whole signal (librosa `np.abs(stft(y))**2`).
pub fn power_spectrogram(y: &[f32], n_fft: usize, hop_length: usize) -> Frames {
    let mut stream = StftStream::new(n_fft, hop_length);
    let mut out = Frames::new(stream.n_bins());
    out.data.reserve_exact(frame_count(y.len(), hop_length) * stream.n_bins());
    stream.push(y, &mut out);
    stream.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct DFT of one frame, in f64.
    fn dft_power(frame: &[f64], k: usize) -> f64 {
        let n = frame.len();
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &x) in frame.iter().enumerate() {
            let phase = -std::f64::consts::TAU * (k * i) as f64 / n as f64;
            re += x * phase.cos();
            im += x * phase.sin();
        }
        re * re + im * im
    }

    #[test]
    fn frames_are_centred_zero_padded_hann_dfts() {
        let y: Vec<f32> = (0..300).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let (n_fft, hop) = (64, 16);
        let spec = power_spectrogram(&y, n_fft, hop);
        assert_eq!(spec.len(), 1 + 300 / 16);
        let w = periodic_hann(n_fft);
        for t in [0, 5, spec.len() - 1] {
            let frame: Vec<f64> = (0..n_fft)
                .map(|i| {
                    let s = (t * hop + i) as isize - (n_fft / 2) as isize;
                    w[i] * if (0..300).contains(&s) { y[s as usize] as f64 } else { 0.0 }
                })
                .collect();
            for k in [0, 3, 32] {
                let want = dft_power(&frame, k);
                let got = spec.at(k, t) as f64;
                assert!((got - want).abs() <= 1e-5 * want.max(1.0), "t {t} k {k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn hann_is_periodic() {
        let w = periodic_hann(4);
        assert_eq!(w, vec![0.0, 0.5, 1.0, 0.5]);
        let w = periodic_hann(2048);
        assert!(
            w.iter()
                .enumerate()
                .all(|(i, &v)| (v - (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / 2048.0).cos())).abs() < 1e-15)
        );
    }

    #[test]
    fn any_chunking_gives_the_same_frames() {
        let y: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.013).sin()).collect();
        let whole = power_spectrogram(&y, 256, 64);
        for chunk in [1, 63, 64, 1000] {
            let mut stream = StftStream::new(256, 64);
            let mut out = Frames::new(129);
            y.chunks(chunk).for_each(|c| stream.push(c, &mut out));
            stream.finish(&mut out);
            assert_eq!(out, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn shorter_than_a_window() {
        let spec = power_spectrogram(&[1.0; 10], 2048, 512);
        assert_eq!(spec.len(), 1);
        assert!(spec.frame(0)[0] > 0.0);
        assert_eq!(power_spectrogram(&[], 2048, 512).len(), 1);
    }
}
