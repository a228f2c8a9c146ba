//! Music-dance retargeting (paper Sec. 4.4): a time warp that carries a dance's
//! visual rhythm onto another piece of music's rhythm, by one of the paper's
//! three patterns — temporal shifting, temporal acceleration, or DTW on the
//! rhythm points (Eq. 22–23) — and how well, and how smoothly, it aligns.
//!
//! Times are seconds. A [`Warp`] maps output time (the music's, from where
//! the output starts in it) to source time (the dance's); it never goes
//! backwards, so a renderer reads the source once, front to back.

use crate::metrics::{beat_align_motion_to_music, beat_align_music_to_motion};

/// Eq. 23: d(i, j) = |P_i − P_j|, the distance of visual rhythm point i from music rhythm
/// point j, as an n×m row-major matrix (n visual points, m music points).
pub fn rhythm_distances(visual: &[f64], music: &[f64]) -> Vec<f64> {
    visual.iter().flat_map(|v| music.iter().map(move |a| (v - a).abs())).collect()
}

/// Dynamic time warping of two point sequences: the accumulated cost of Eq. 22 and the
/// warping path.
#[derive(Clone, Debug, PartialEq)]
pub struct Dtw {
    pub n: usize,
    pub m: usize,
    /// c(i, j) of Eq. 22, row-major n×m.
    pub cost: Vec<f64>,
    /// (i, j) from (0, 0) to (n − 1, m − 1), each step one of (1, 1), (0, 1), (1, 0).
    pub path: Vec<(usize, usize)>,
}

/// Eq. 22: c(i, j) = d(i, j) + min{c(i−1, j−1), c(i−1, j), c(i, j−1)}, c(0, 0) = d(0, 0), over
/// `distances` (n×m, row-major, e.g. [`rhythm_distances`]); then the path back from
/// (n − 1, m − 1) along the minimal predecessors. Ties go to the diagonal, then to (i, j−1),
/// then to (i−1, j), as librosa's `sequence.dtw` breaks them. `None` when either side is empty.
pub fn dtw(distances: &[f64], n: usize, m: usize) -> Option<Dtw> {
    if n == 0 || m == 0 || distances.len() != n * m {
        return None;
    }
    const STEPS: [(usize, usize); 3] = [(1, 1), (0, 1), (1, 0)];
    let mut cost = vec![f64::INFINITY; n * m];
    let mut step = vec![0u8; n * m];
    for i in 0..n {
        for j in 0..m {
            let at = i * m + j;
            if i == 0 && j == 0 {
                cost[at] = distances[at];
                continue;
            }
            let mut best = (f64::INFINITY, 0u8);
            for (k, &(di, dj)) in STEPS.iter().enumerate() {
                if i >= di && j >= dj && cost[(i - di) * m + (j - dj)] < best.0 {
                    best = (cost[(i - di) * m + (j - dj)], k as u8);
                }
            }
            cost[at] = distances[at] + best.0;
            step[at] = best.1;
        }
    }
    let (mut i, mut j) = (n - 1, m - 1);
    let mut path = vec![(i, j)];
    while (i, j) != (0, 0) {
        let (di, dj) = STEPS[step[i * m + j] as usize];
        (i, j) = (i - di, j - dj);
        path.push((i, j));
    }
    path.reverse();
    Some(Dtw { n, m, cost, path })
}

/// The paper's three retargeting patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Temporal shifting: the crop of the longer sequence, as long as the shorter, whose
    /// rhythm point count is nearest the shorter's, with the first rhythm points aligned.
    Shift,
    /// Temporal acceleration: the k-th visual rhythm point onto the k-th music rhythm point,
    /// every interval between them stretched or squeezed to the music's.
    Accelerate,
    /// DTW on the rhythm points (Eq. 22–23): the warping path's one-to-one pairs become the
    /// anchors.
    Dtw,
}

/// A dance and a piece of music to retarget it onto.
#[derive(Clone, Debug)]
pub struct Retarget<'a> {
    /// Visual rhythm points of the dance, and its length.
    pub visual: &'a [f64],
    pub dance_s: f64,
    /// Rhythm points of the music, and its length.
    pub music: &'a [f64],
    pub music_s: f64,
    /// The step candidate crops of [`Pattern::Shift`] move by (a frame).
    pub frame_s: f64,
}

/// Output time → source time: piecewise linear through `anchors` (output, source), slope 1
/// outside them, held within the source; never decreasing. The output is `duration_s` long
/// and starts `music_offset_s` into the music.
#[derive(Clone, Debug, PartialEq)]
pub struct Warp {
    pub anchors: Vec<(f64, f64)>,
    pub duration_s: f64,
    pub music_offset_s: f64,
    /// The source's length: source times are held within [0, source_s].
    pub source_s: f64,
}

impl Warp {
    /// The untouched combination: dance and music from their starts, as long as the shorter.
    pub fn identity(dance_s: f64, music_s: f64) -> Warp {
        Warp { anchors: vec![(0.0, 0.0)], duration_s: dance_s.min(music_s), music_offset_s: 0.0, source_s: dance_s }
    }

    pub fn new(pattern: Pattern, r: &Retarget<'_>) -> Warp {
        match pattern {
            Pattern::Shift => shift(r),
            Pattern::Accelerate => {
                let anchors = r.music.iter().zip(r.visual).map(|(&a, &v)| (a, v)).collect();
                Warp::through(monotone(anchors), r)
            }
            Pattern::Dtw => {
                let distances = rhythm_distances(r.visual, r.music);
                let anchors = match dtw(&distances, r.visual.len(), r.music.len()) {
                    Some(d) => d.path.iter().map(|&(i, j)| (r.music[j], r.visual[i])).collect(),
                    None => Vec::new(),
                };
                Warp::through(monotone(anchors), r)
            }
        }
    }

    /// The warp through `anchors` over the music from its start, ending with the music or
    /// where the dance runs out (at its own speed past the last anchor), whichever comes first:
    /// never a frozen last frame under music that goes on.
    fn through(anchors: Vec<(f64, f64)>, r: &Retarget<'_>) -> Warp {
        let dance_ends = anchors.last().map_or(r.dance_s, |&(out, src)| out + (r.dance_s - src));
        Warp { anchors, duration_s: r.music_s.min(dance_ends).max(0.0), music_offset_s: 0.0, source_s: r.dance_s }
    }

    /// The dance's time shown at output time `t`.
    pub fn source_time(&self, t: f64) -> f64 {
        let a = &self.anchors;
        let raw = match a.iter().position(|&(out, _)| out > t) {
            _ if a.is_empty() => t,
            Some(0) => a[0].1 + (t - a[0].0),
            None => a[a.len() - 1].1 + (t - a[a.len() - 1].0),
            Some(k) => {
                let ((t0, s0), (t1, s1)) = (a[k - 1], a[k]);
                s0 + (t - t0) * (s1 - s0) / (t1 - t0)
            }
        };
        raw.clamp(0.0, self.source_s)
    }

    /// When a source time is shown first in the output (`None`: never, within the output).
    pub fn output_time(&self, source: f64) -> Option<f64> {
        // The warp is monotone: bisect on it.
        let (mut lo, mut hi) = (0.0, self.duration_s);
        if self.source_time(hi) < source || self.source_time(lo) > source + 1e-9 {
            return None;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.source_time(mid) < source { lo = mid } else { hi = mid }
        }
        Some(hi)
    }

    /// The slowest and fastest playback of the dance over the output, in windows of `window_s`
    /// (source seconds per output second; 1 is the dance's own speed, 0 a held frame): the
    /// paper's fluency, as the viewer sees it.
    pub fn speed_range(&self, window_s: f64) -> (f64, f64) {
        let window = window_s.min(self.duration_s).max(1e-6);
        let steps = ((self.duration_s - window) / (window / 2.0)).floor().max(0.0) as usize;
        (0..=steps)
            .map(|k| {
                let t = k as f64 * window / 2.0;
                (self.source_time(t + window) - self.source_time(t)) / window
            })
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s)))
    }
}

/// The window [`Alignment`] measures playback speed over: long enough to span a rhythm
/// point's interval, short enough to see a burst.
pub const FLUENCY_WINDOW_S: f64 = 0.5;

/// Keeps the anchors that move forward in both times (a path's one-to-one pairs).
fn monotone(anchors: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut kept: Vec<(f64, f64)> = Vec::with_capacity(anchors.len());
    for (out, src) in anchors {
        if kept.last().is_none_or(|&(o, s)| out > o && src > s) {
            kept.push((out, src));
        }
    }
    kept
}

/// [`Pattern::Shift`]: slide a window as long as the shorter sequence over the longer one, by
/// `frame_s`; keep the crop whose rhythm point count is nearest the shorter's (the earliest on
/// ties), then shift so the first rhythm points of dance and music meet.
fn shift(r: &Retarget<'_>) -> Warp {
    let dance_longer = r.dance_s >= r.music_s;
    let (long, long_s, short, short_s) = if dance_longer {
        (r.visual, r.dance_s, r.music, r.music_s)
    } else {
        (r.music, r.music_s, r.visual, r.dance_s)
    };
    let steps = ((long_s - short_s) / r.frame_s.max(1e-6)).floor() as usize;
    let count = |start: f64| long.iter().filter(|&&p| p >= start && p < start + short_s).count();
    let start = (0..=steps)
        .map(|k| k as f64 * r.frame_s)
        .min_by_key(|&s| (count(s) as i64 - short.len() as i64).abs())
        .unwrap_or(0.0);
    let first_in = |points: &[f64], from: f64| points.iter().copied().find(|&p| p >= from);
    let (music_offset_s, delta) = if dance_longer {
        // Output: the whole music; source: the crop from `start`, moved so its first rhythm
        // point meets the music's first.
        let delta = match (first_in(r.visual, start), r.music.first()) {
            (Some(v), Some(&a)) => v - a,
            _ => start,
        };
        (0.0, delta.clamp(0.0, r.dance_s - r.music_s))
    } else {
        // Output: the music from `start`, moved the same way; source: the whole dance.
        let offset = match (first_in(r.music, start), r.visual.first()) {
            (Some(a), Some(&v)) => a - v,
            _ => start,
        };
        (offset.clamp(0.0, r.music_s - r.dance_s), 0.0)
    };
    Warp { anchors: vec![(0.0, delta)], duration_s: short_s, music_offset_s, source_s: r.dance_s }
}

/// How well a warped dance's rhythm meets the music's, and how smoothly.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Alignment {
    /// Beat Align Score, music → motion (Bailando) and motion → music (AIST++/FACT).
    pub beat_align_music_to_motion: Option<f64>,
    pub beat_align_motion_to_music: Option<f64>,
    /// Music beats with a visual rhythm point within a frame (`frame_s`, the analysis rate's).
    pub beats_hit: Option<f64>,
    /// Slowest and fastest playback of the dance over half-second windows (1: its own speed;
    /// 0: a frame held).
    pub slowest: f64,
    pub fastest: f64,
}

/// Scores `warp` of a dance with rhythm points `visual` onto music beats `beats` (music time),
/// with Beat Align's σ `sigma_s` and a frame of `frame_s`.
pub fn alignment(warp: &Warp, visual: &[f64], beats: &[f64], sigma_s: f64, frame_s: f64) -> Alignment {
    let shown: Vec<f64> = visual.iter().filter_map(|&v| warp.output_time(v)).collect();
    let beats: Vec<f64> =
        beats.iter().map(|b| b - warp.music_offset_s).filter(|&b| (0.0..warp.duration_s).contains(&b)).collect();
    let hit = beats.iter().filter(|&&b| shown.iter().any(|&v| (v - b).abs() <= frame_s + 1e-9)).count();
    let (slowest, fastest) = warp.speed_range(FLUENCY_WINDOW_S);
    Alignment {
        beat_align_music_to_motion: beat_align_music_to_motion(&beats, &shown, sigma_s),
        beat_align_motion_to_music: beat_align_motion_to_music(&shown, &beats, sigma_s),
        beats_hit: (!beats.is_empty()).then(|| hit as f64 / beats.len() as f64),
        slowest,
        fastest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_by_hand() {
        // Visual points at 0, 1, 2; music points at 0, 2: the middle visual point goes to either.
        let d = dtw(&rhythm_distances(&[0.0, 1.0, 2.0], &[0.0, 2.0]), 3, 2).unwrap();
        // c = [[0, 2], [1, 1+min(0,2,1)=1], [2+1=3, 0+min(1,1,3)=1]]; at (2, 1) the diagonal
        // (1, 0) ties with (1, 1) and wins.
        assert_eq!(d.cost, [0.0, 2.0, 1.0, 1.0, 3.0, 1.0]);
        assert_eq!(d.path, [(0, 0), (1, 0), (2, 1)]);
        assert!(dtw(&[], 0, 3).is_none());
    }

    #[test]
    fn accelerate_lands_each_visual_point_on_its_music_point() {
        let (visual, music) = ([0.5, 1.5, 2.0, 3.5], [1.0, 2.0, 3.0, 4.0]);
        let r = Retarget { visual: &visual, dance_s: 5.0, music: &music, music_s: 5.0, frame_s: 0.125 };
        let warp = Warp::new(Pattern::Accelerate, &r);
        for (v, a) in visual.iter().zip(&music) {
            assert!((warp.source_time(*a) - v).abs() < 1e-12);
            assert!((warp.output_time(*v).unwrap() - a).abs() < 1e-9);
        }
        // Half speed from 2.0 to 3.0 (0.5 s of dance over 1 s), 1.5× from 3.0 to 4.0, in
        // windows of a second. The dance runs out at output 5.5 s, after the music.
        assert_eq!(warp.speed_range(1.0), (0.5, 1.5));
        assert_eq!(warp.duration_s, 5.0);
        let longer = Retarget { music_s: 9.0, ..r.clone() };
        assert_eq!(Warp::new(Pattern::Accelerate, &longer).duration_s, 5.5);
        // A warp asked to run past the dance holds its last frame: speed 0.
        assert_eq!(Warp { duration_s: 7.0, ..warp.clone() }.speed_range(1.0).0, 0.0);
        let scored = alignment(&warp, &visual, &music, 0.05, 0.125);
        assert_eq!((scored.beats_hit, scored.beat_align_music_to_motion), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn shift_picks_the_crop_with_as_many_points_and_aligns_the_first() {
        // A 10 s dance with points every second from 3.2 s, two in its first 3 s; 4 s of music
        // with points at 0.5, 1.5, 2.5, 3.5.
        let visual: Vec<f64> = (0..7).map(|k| 3.2 + k as f64).collect();
        let music = [0.5, 1.5, 2.5, 3.5];
        let r = Retarget { visual: &visual, dance_s: 10.0, music: &music, music_s: 4.0, frame_s: 0.125 };
        let warp = Warp::new(Pattern::Shift, &r);
        // The first 4 s crop holding four points starts at 2.25 s (3.2, 4.2, 5.2, 6.2); its
        // first point, 3.2 s, meets the music's, 0.5 s.
        assert_eq!((warp.duration_s, warp.music_offset_s), (4.0, 0.0));
        assert!((warp.source_time(0.5) - 3.2).abs() < 1e-12, "{warp:?}");
        assert_eq!(warp.speed_range(0.5), (1.0, 1.0));
        // The shift keeps every interval: all four music points meet a visual point.
        let scored = alignment(&warp, &visual, &music, 0.05, 0.125);
        assert_eq!(scored.beats_hit, Some(1.0));
    }

    #[test]
    fn dtw_warp_is_monotone_and_aligns_better_than_none() {
        // A dance at 100 bpm (accent every 0.6 s) onto music at 120 bpm (beats every 0.5 s).
        let visual: Vec<f64> = (0..16).map(|k| 0.3 + 0.6 * k as f64).collect();
        let beats: Vec<f64> = (0..20).map(|k| 0.25 + 0.5 * k as f64).collect();
        let r = Retarget { visual: &visual, dance_s: 10.0, music: &beats, music_s: 10.0, frame_s: 1.0 / 24.0 };
        let warp = Warp::new(Pattern::Dtw, &r);
        let times: Vec<f64> = (0..240).map(|k| warp.source_time(k as f64 / 24.0)).collect();
        assert!(times.windows(2).all(|w| w[1] >= w[0]));
        let before = alignment(&Warp::identity(10.0, 10.0), &visual, &beats, 0.05, 1.0 / 24.0);
        let after = alignment(&warp, &visual, &beats, 0.05, 1.0 / 24.0);
        assert!(after.beat_align_motion_to_music.unwrap() > 0.95, "{after:?}");
        assert!(after.beat_align_motion_to_music > before.beat_align_motion_to_music, "{before:?} {after:?}");
    }
}
