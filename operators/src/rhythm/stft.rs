//! Power spectrogram as librosa 0.11 computes it (`stft`, `center=True`,
//! `pad_mode='constant'`, periodic Hann; spec §1), in a streaming form: the
//! whole-signal form is one push and a finish.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

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

/// `|X[k]|²` of one windowed frame, as librosa gets it: an f64 FFT stored as
/// complex64, magnitude taken in f32 (`hypot`) and squared in f32.
#[derive(Clone)]
pub struct PowerFft {
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
    input: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl std::fmt::Debug for PowerFft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerFft").field("n_fft", &self.window.len()).finish_non_exhaustive()
    }
}

impl PowerFft {
    pub fn new(n_fft: usize) -> PowerFft {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n_fft);
        PowerFft {
            window: periodic_hann(n_fft),
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        }
    }

    pub fn n_fft(&self) -> usize {
        self.window.len()
    }

    /// Writes the `n_fft / 2 + 1` power values of `frame` (`n_fft` samples) into `out`.
    pub fn power(&mut self, frame: &[f32], out: &mut [f32]) {
        for ((dst, &x), &w) in self.input.iter_mut().zip(frame).zip(&self.window) {
            *dst = w * x as f64;
        }
        self.fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .expect("buffer sizes are the planner's");
        for (dst, c) in out.iter_mut().zip(&self.spectrum) {
            // hypotf of the complex64 parts, computed as glibc does (in f64,
            // rounded once), without the libm call's overflow handling: the
            // squares of f32 values cannot overflow an f64.
            let (re, im) = (c.re as f32 as f64, c.im as f32 as f64);
            let magnitude = (re * re + im * im).sqrt() as f32;
            *dst = magnitude * magnitude;
        }
    }
}

/// Streaming power STFT: audio in chunks of any size, each frame out as soon
/// as its window (`[hop·t − n_fft/2, hop·t + n_fft/2)`) is complete.
#[derive(Clone, Debug)]
pub struct StftStream {
    fft: PowerFft,
    hop: usize,
    /// The zero-padded signal from padded index `buffer_start` on.
    buffer: Vec<f32>,
    buffer_start: usize,
    next_frame: usize,
    samples_seen: usize,
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
            power: vec![0.0; n_fft / 2 + 1],
        }
    }

    pub fn n_bins(&self) -> usize {
        self.fft.n_fft() / 2 + 1
    }

    /// Adds samples; appends the frames they complete to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut Frames) {
        self.samples_seen += samples.len();
        self.buffer.extend_from_slice(samples);
        self.emit_ready(usize::MAX, out);
    }

    /// Ends the signal: pads with zeros and emits the remaining frames, for
    /// `1 + n / hop` frames in all.
    pub fn finish(&mut self, out: &mut Frames) {
        let n_fft = self.fft.n_fft();
        self.buffer.extend(std::iter::repeat_n(0.0, n_fft - n_fft / 2));
        self.emit_ready(frame_count(self.samples_seen, self.hop), out);
    }

    fn emit_ready(&mut self, max_frames: usize, out: &mut Frames) {
        let n_fft = self.fft.n_fft();
        while self.next_frame < max_frames {
            let start = self.next_frame * self.hop - self.buffer_start;
            if start + n_fft > self.buffer.len() {
                break;
            }
            self.fft.power(&self.buffer[start..start + n_fft], &mut self.power);
            out.push(&self.power);
            self.next_frame += 1;
        }
        // Keep only what later frames need.
        let keep_from = (self.next_frame * self.hop - self.buffer_start).min(self.buffer.len());
        self.buffer.drain(..keep_from);
        self.buffer_start += keep_from;
    }
}

/// Power spectrogram of a whole signal (librosa `np.abs(stft(y))**2`).
pub fn power_spectrogram(y: &[f32], n_fft: usize, hop_length: usize) -> Frames {
    let mut stream = StftStream::new(n_fft, hop_length);
    let mut out = Frames::new(stream.n_bins());
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
