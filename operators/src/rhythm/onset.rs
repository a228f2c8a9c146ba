//! Onset strength (librosa `onset.onset_strength`, spec §5), peak picking
//! (`util.peak_pick`, §6) and onset detection (`onset.onset_detect`, §7).

use std::collections::VecDeque;

use super::mel::{DbParams, power_to_db};
use super::stft::{Frames, StftStream, frame_count};
use super::{RhythmError, SpectrogramParams, check_finite};

/// How the per-band flux is combined into one value per frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aggregate {
    /// `np.mean` (onset detection, tempogram).
    #[default]
    Mean,
    /// `np.median` (the beat tracker's envelope).
    Median,
}

/// `onset_strength` parameters (librosa names and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnsetParams {
    /// Frames between the compared spectra.
    pub lag: usize,
    /// SuperFlux: width of the maximum filter over mel bands applied to the reference frame.
    pub max_size: usize,
    /// Remove the DC trend with `y[n] = x[n] − x[n−1] + 0.99·y[n−1]`.
    pub detrend: bool,
    /// Shift the envelope so frame `t` lines up with STFT frame `t`.
    pub center: bool,
    pub aggregate: Aggregate,
}

impl Default for OnsetParams {
    fn default() -> Self {
        OnsetParams { lag: 1, max_size: 1, detrend: false, center: true, aggregate: Aggregate::Mean }
    }
}

/// Log-power mel spectrogram (`power_to_db(melspectrogram(y))`), frames of `n_mels`.
pub fn mel_db(y: &[f32], spec: &SpectrogramParams, db: &DbParams) -> Frames {
    let filters = spec.filterbank();
    let n_mels = filters.n_mels();
    let mut stream = StftStream::new(spec.n_fft, spec.hop_length);
    let mut mel = Frames { n_bins: n_mels, data: Vec::with_capacity(frame_count(y.len(), spec.hop_length) * n_mels) };
    // Each power frame straight into its mel frame: the power spectrogram is never held.
    let mut convert = |power: &[f32]| {
        let start = mel.data.len();
        mel.data.resize(start + n_mels, 0.0);
        filters.apply(power, &mut mel.data[start..]);
    };
    stream.push_with(y, &mut convert);
    stream.finish_with(&mut convert);
    power_to_db(&mut mel.data, db);
    mel
}

/// The rectified spectral flux between two dB frames, aggregated over bands
/// (Sec. 3.1.1 of the paper; spec §5 steps 2–4): `agg_f max(0, S[f] − R[f])`,
/// where `R` is `reference` after the SuperFlux maximum filter of `max_size`.
pub fn spectral_flux(current: &[f32], reference: &[f32], max_size: usize, aggregate: Aggregate) -> f32 {
    let mut flux = Flux::default();
    flux.rectify(current, reference, max_size);
    match aggregate {
        Aggregate::Mean => flux.mean(),
        Aggregate::Median => flux.median(),
    }
}

/// The per-band rectified flux of one frame pair, kept so that the mean and
/// the median envelopes come from one pass, and reused from frame to frame.
#[derive(Clone, Debug, Default)]
struct Flux {
    bands: Vec<f32>,
}

impl Flux {
    fn rectify(&mut self, current: &[f32], reference: &[f32], max_size: usize) {
        let n = current.len();
        let reference = &reference[..n];
        self.bands.clear();
        if max_size <= 1 {
            self.bands.extend(current.iter().zip(reference).map(|(&c, &r)| 0f32.max(c - r)));
        } else {
            // scipy maximum_filter1d, origin 0: window [f − ⌊s/2⌋, f − ⌊s/2⌋ + s), clipped.
            let half = max_size / 2;
            self.bands.extend((0..n).map(|f| {
                let lo = f.saturating_sub(half);
                let hi = (f + max_size - half).min(n);
                let r = reference[lo..hi].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                0f32.max(current[f] - r)
            }));
        }
    }

    /// numpy adds the band rows one after another in f32, then divides.
    fn mean(&self) -> f32 {
        self.bands.iter().fold(0f32, |acc, &x| acc + x) / self.bands.len() as f32
    }

    /// `np.median`: the middle order statistic, or the mean of the two middle ones.
    /// Reorders the bands.
    fn median(&mut self) -> f32 {
        let n = self.bands.len();
        // Rectified flux is zero in about half the bands: move the positive
        // values to the front; every order statistic below the zero count is 0,
        // and the others are selected among the positives alone.
        let mut positives = 0;
        for i in 0..n {
            if self.bands[i] > 0.0 {
                self.bands.swap(positives, i);
                positives += 1;
            }
        }
        let zeros = n - positives;
        let upper_rank = n / 2;
        if upper_rank < zeros {
            return 0.0;
        }
        let (below, &mut upper, _) = self.bands[..positives].select_nth_unstable_by(upper_rank - zeros, f32::total_cmp);
        if n % 2 == 1 {
            return upper;
        }
        let lower = if upper_rank - 1 < zeros { 0.0 } else { below.iter().copied().fold(f32::NEG_INFINITY, f32::max) };
        (lower + upper) / 2.0
    }
}

/// Frames of delay between an STFT frame and its flux value in the envelope.
pub fn envelope_delay(spec: &SpectrogramParams, params: &OnsetParams) -> usize {
    params.lag + if params.center { spec.n_fft / (2 * spec.hop_length) } else { 0 }
}

/// Onset strength envelope of dB mel frames (librosa `onset_strength(S=…)`):
/// one value per frame, the first `lag + n_fft/(2·hop)` zero.
pub fn onset_strength_from_db(mel_db: &Frames, spec: &SpectrogramParams, params: &OnsetParams) -> Vec<f32> {
    let [envelope] = envelopes_from_db(mel_db, spec, params, [params.aggregate]);
    envelope
}

/// Both envelopes `analyze` needs, the mean one (onsets, tempogram) and the
/// median one (beats), from one pass over the frame pairs: `params` with each
/// aggregation in turn.
pub fn mean_and_median_from_db(mel_db: &Frames, spec: &SpectrogramParams, params: &OnsetParams) -> [Vec<f32>; 2] {
    envelopes_from_db(mel_db, spec, params, [Aggregate::Mean, Aggregate::Median])
}

fn envelopes_from_db<const N: usize>(
    mel_db: &Frames,
    spec: &SpectrogramParams,
    params: &OnsetParams,
    aggregates: [Aggregate; N],
) -> [Vec<f32>; N] {
    let t = mel_db.len();
    let lag = params.lag.max(1);
    let delay = envelope_delay(spec, params);
    let mut envelopes: [Vec<f32>; N] = std::array::from_fn(|_| {
        let mut envelope = Vec::with_capacity(delay + t);
        envelope.resize(delay, 0f32);
        envelope
    });
    let mut flux = Flux::default();
    for j in 0..t.saturating_sub(lag) {
        flux.rectify(mel_db.frame(j + lag), mel_db.frame(j), params.max_size);
        // The mean before the median, which reorders the bands (and so the f32 sum).
        let mean = aggregates.contains(&Aggregate::Mean).then(|| flux.mean());
        for (envelope, aggregate) in envelopes.iter_mut().zip(aggregates) {
            envelope.push(match (aggregate, mean) {
                (Aggregate::Mean, Some(mean)) => mean,
                _ => flux.median(),
            });
        }
    }
    for envelope in envelopes.iter_mut() {
        if params.detrend {
            detrend(envelope);
        }
        if params.center {
            envelope.truncate(t);
        }
    }
    envelopes
}

/// `scipy.signal.lfilter([1, −1], [1, −0.99], x)` with zero initial state.
fn detrend(x: &mut [f32]) {
    let (mut previous_x, mut previous_y) = (0f32, 0f32);
    for v in x.iter_mut() {
        let y = *v - previous_x + 0.99 * previous_y;
        (previous_x, previous_y) = (*v, y);
        *v = y;
    }
}

/// librosa `onset.onset_strength(y=y, sr=sr, ...)`.
pub fn onset_strength(y: &[f32], spec: &SpectrogramParams, params: &OnsetParams) -> Result<Vec<f32>, RhythmError> {
    check_finite(y)?;
    Ok(onset_strength_from_db(&mel_db(y, spec, &DbParams::default()), spec, params))
}

/// `util.peak_pick` parameters, in frames (librosa names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeakPickParams {
    pub pre_max: usize,
    pub post_max: usize,
    pub pre_avg: usize,
    pub post_avg: usize,
    pub delta: f32,
    pub wait: usize,
}

impl PeakPickParams {
    /// The values `onset_detect` derives from the frame rate (spec §7.4).
    pub fn onset_detect_defaults(sr: u32, hop_length: usize) -> PeakPickParams {
        let frames = |seconds: f64| py_floor_div(seconds * sr as f64, hop_length as f64).ceil() as usize;
        PeakPickParams {
            pre_max: frames(0.03),
            post_max: frames(0.0) + 1,
            pre_avg: frames(0.10),
            post_avg: frames(0.10) + 1,
            delta: 0.07,
            wait: frames(0.03),
        }
    }
}

/// Python's float `//` (floor of the quotient, computed through `fmod` as CPython does).
fn py_floor_div(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    let floor = div.floor();
    if div - floor > 0.5 { floor + 1.0 } else { floor }
}

/// librosa `util.peak_pick` (the numba version of 0.10.2+; spec §6): frame
/// `n` is a peak if it equals the maximum of `x[n−pre_max .. n+post_max)` and
/// is at least the mean of `x[n−pre_avg .. n+post_avg)` plus `delta`; after a
/// peak, `wait` frames are skipped.
pub fn peak_pick(x: &[f32], p: &PeakPickParams) -> Vec<usize> {
    let mut picker = PeakPicker::new(*p);
    let mut peaks: Vec<usize> = x.iter().flat_map(|&v| picker.push(v)).collect();
    peaks.extend(picker.finish());
    peaks
}

/// [`peak_pick`] over a growing sequence: each frame is decided as soon as
/// its look-ahead (`max(post_max, post_avg)` frames) is known, or at
/// [`PeakPicker::finish`]. The per-clip function is this, fed everything at once.
#[derive(Clone, Debug)]
pub struct PeakPicker {
    params: PeakPickParams,
    /// Values from index `offset` on (what later decisions can still look at).
    values: VecDeque<f32>,
    offset: usize,
    next: usize,
    /// Normalise by the running range, as `onset_detect` normalises by the clip's.
    normalize: bool,
    min: f32,
    max: f32,
}

impl PeakPicker {
    /// Picks peaks of the values as given.
    pub fn new(params: PeakPickParams) -> PeakPicker {
        PeakPicker {
            params,
            values: VecDeque::new(),
            offset: 0,
            next: 0,
            normalize: false,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }

    /// Picks peaks of `(v − min) / (max − min + tiny)` with the running minimum and maximum.
    pub fn normalizing(params: PeakPickParams) -> PeakPicker {
        PeakPicker { normalize: true, ..PeakPicker::new(params) }
    }

    /// Adds the next value; returns the frames decided to be peaks meanwhile.
    pub fn push(&mut self, value: f32) -> Vec<usize> {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.values.push_back(value);
        let look_ahead = self.params.post_max.max(self.params.post_avg).max(1);
        self.decide(|n, len| n + look_ahead <= len)
    }

    /// Ends the sequence: decides the remaining frames.
    pub fn finish(&mut self) -> Vec<usize> {
        self.decide(|n, len| n < len)
    }

    /// How many frames are decided (peak or not): all before this index.
    pub fn decided(&self) -> usize {
        self.next.min(self.offset + self.values.len())
    }

    fn decide(&mut self, ready: impl Fn(usize, usize) -> bool) -> Vec<usize> {
        let p = self.params;
        let len = self.offset + self.values.len();
        let (min, range) =
            if self.normalize { (self.min, self.max - self.min + f32::MIN_POSITIVE) } else { (0.0, 1.0) };
        let x = |i: usize| {
            if self.normalize { (self.values[i - self.offset] - min) / range } else { self.values[i - self.offset] }
        };
        let mut peaks = Vec::new();
        while ready(self.next, len) {
            let n = self.next;
            // Windows are clipped to the sequence and always hold n itself.
            let max_window = n.saturating_sub(p.pre_max)..(n + p.post_max).min(len).max(n + 1);
            let is_max = x(n) == max_window.map(x).fold(f32::NEG_INFINITY, f32::max);
            let is_peak = is_max && {
                // numba's mean: sequential f32 sum, divided in f64, cast to f32; the test in f32.
                let window = n.saturating_sub(p.pre_avg)..(n + p.post_avg).min(len).max(n + 1);
                let count = window.len();
                let sum = window.map(x).fold(0f32, |acc, v| acc + v);
                x(n) >= (sum as f64 / count as f64) as f32 + p.delta
            };
            if is_peak {
                peaks.push(n);
                self.next += p.wait + 1;
            } else {
                self.next += 1;
            }
        }
        // What later decisions can look back at; never past what has arrived.
        let keep_from = self.next.saturating_sub(p.pre_max.max(p.pre_avg)).min(len).max(self.offset);
        self.values.drain(..(keep_from - self.offset).min(self.values.len()));
        self.offset = keep_from;
        peaks
    }
}

/// Per-frame values held until the peak picker has decided their frame, then
/// released in order with their peak flag: what a per-frame table row needs.
#[derive(Clone, Debug)]
pub struct FlaggedFrames<T> {
    pending: VecDeque<(usize, T)>,
    peaks: VecDeque<usize>,
}

impl<T> Default for FlaggedFrames<T> {
    fn default() -> Self {
        FlaggedFrames { pending: VecDeque::new(), peaks: VecDeque::new() }
    }
}

impl<T> FlaggedFrames<T> {
    pub fn push(&mut self, index: usize, value: T) {
        self.pending.push_back((index, value));
    }

    /// Peaks as the picker reports them (ascending).
    pub fn peaks(&mut self, peaks: impl IntoIterator<Item = usize>) {
        self.peaks.extend(peaks);
    }

    /// The frames before `decided`, with whether each is a peak.
    pub fn release(&mut self, decided: usize) -> Vec<(usize, T, bool)> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|(i, _)| *i < decided) {
            let (index, value) = self.pending.pop_front().expect("checked");
            while self.peaks.front().is_some_and(|&p| p < index) {
                self.peaks.pop_front();
            }
            let peak = self.peaks.front() == Some(&index);
            out.push((index, value, peak));
        }
        out
    }
}

/// Normalises an envelope as `onset_detect` does: `(e − min) / (max − min + tiny)`
/// in f32; `None` when it is all zero or not finite.
pub fn normalize_envelope(envelope: &[f32]) -> Option<Vec<f32>> {
    let min = envelope.iter().copied().fold(f32::INFINITY, f32::min);
    let shifted: Vec<f32> = envelope.iter().map(|&e| e - min).collect();
    let max = shifted.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let normalized: Vec<f32> = shifted.iter().map(|&e| e / (max + f32::MIN_POSITIVE)).collect();
    let usable = normalized.iter().any(|&e| e != 0.0) && normalized.iter().all(|e| e.is_finite());
    usable.then_some(normalized)
}

/// librosa `onset.onset_detect(onset_envelope=…)`: onset frame indices,
/// ascending; with `backtrack`, each moved back to the preceding minimum of
/// the (normalised) envelope.
pub fn onset_detect_from_envelope(envelope: &[f32], peaks: &PeakPickParams, backtrack: bool) -> Vec<usize> {
    let Some(normalized) = normalize_envelope(envelope) else { return Vec::new() };
    let onsets = peak_pick(&normalized, peaks);
    if backtrack { onset_backtrack(&onsets, &normalized) } else { onsets }
}

/// librosa `onset.onset_backtrack(events, energy)`: each onset moved back to
/// the nearest preceding local minimum of `energy`.
pub fn onset_backtrack(events: &[usize], energy: &[f32]) -> Vec<usize> {
    let n = energy.len();
    // Local minima: energy[i] <= energy[i-1] and energy[i] < energy[i+1].
    let mut minima: Vec<usize> =
        (1..n.saturating_sub(1)).filter(|&i| energy[i] <= energy[i - 1] && energy[i] < energy[i + 1]).collect();
    minima.insert(0, 0);
    events
        .iter()
        .map(|&e| {
            let i = minima.partition_point(|&m| m <= e);
            minima[i.saturating_sub(1)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_pick_at_16k_marks_frames_above_the_local_mean() {
        let p = PeakPickParams::onset_detect_defaults(16_000, 512);
        assert_eq!(p, PeakPickParams { pre_max: 0, post_max: 1, pre_avg: 3, post_avg: 4, delta: 0.07, wait: 0 });
        assert_eq!(
            PeakPickParams::onset_detect_defaults(44_100, 512),
            PeakPickParams { pre_max: 2, post_max: 1, pre_avg: 8, post_avg: 9, delta: 0.07, wait: 2 }
        );
        // With pre_max 0 every frame is its own maximum: both halves of a two-frame bump count.
        let x = [0.0, 0.0, 0.0, 1.0, 0.9, 0.0, 0.0, 0.0, 0.05, 0.0];
        assert_eq!(peak_pick(&x, &p), vec![3, 4]);
    }

    #[test]
    fn peak_pick_waits_after_a_peak() {
        let p = PeakPickParams { pre_max: 1, post_max: 1, pre_avg: 1, post_avg: 1, delta: 0.0, wait: 2 };
        // 0 is a peak, so 1 and 2 are skipped; 3 is a peak, so 4 and 5 are.
        assert_eq!(peak_pick(&[1.0, 0.0, 1.0, 1.0, 0.0, 1.0], &p), vec![0, 3]);
        assert_eq!(peak_pick(&[1.0, 0.0, 1.0, 1.0, 0.0, 1.0], &PeakPickParams { wait: 0, ..p }), vec![0, 2, 3, 5]);
    }

    #[test]
    fn python_floor_division() {
        assert_eq!(py_floor_div(480.0, 512.0), 0.0);
        assert_eq!(py_floor_div(1600.0, 512.0), 3.0);
        assert_eq!(py_floor_div(-1.0, 512.0), -1.0);
    }

    #[test]
    fn flux_is_rectified_and_superflux_uses_the_band_maximum() {
        let current = [1.0, 5.0, 2.0, 0.0];
        let reference = [2.0, 1.0, 1.0, 3.0];
        assert_eq!(spectral_flux(&current, &reference, 1, Aggregate::Mean), (0.0 + 4.0 + 1.0 + 0.0) / 4.0);
        assert_eq!(spectral_flux(&current, &reference, 1, Aggregate::Median), (0.0 + 1.0) / 2.0);
        // max_size 3: R = [2, 2, 3, 3].
        assert_eq!(spectral_flux(&current, &reference, 3, Aggregate::Mean), 3.0 / 4.0);
        // Even max_size 4 is off-centre: [f−2, f+1] → R = [2, 2, 3, 3].
        assert_eq!(spectral_flux(&current, &reference, 4, Aggregate::Mean), 3.0 / 4.0);
    }

    #[test]
    fn backtrack_goes_to_the_previous_minimum() {
        let energy = [3.0, 1.0, 2.0, 5.0, 4.0, 0.5, 6.0];
        assert_eq!(onset_backtrack(&[3, 6], &energy), vec![1, 5]);
    }
}
