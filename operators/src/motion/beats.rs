//! Model-free visual beats (Davis & Agrawala 2018): a directogram of the flow,
//! a visual impact envelope from its decelerations, and the envelope's peaks.
//! A usable dance rhythm before any model is trained, and the baseline the
//! trained model must beat.

use super::flow::Flow;
use super::hoof::{HoofParams, for_each_binned, hypot};
use crate::rhythm::{PeakPickParams, peak_pick};

/// Directogram column of one flow field: total flow magnitude per direction
/// (unnormalised HOOF over the full circle), divided by the pixel count so it
/// does not depend on the frame size.
pub fn directogram(flow: &Flow, bins: usize) -> Vec<f32> {
    let params = HoofParams { bins, symmetric: false, min_magnitude: 0.0 };
    let mut column = vec![0f64; bins];
    for_each_binned(flow, &params, hypot, |_, bin, m| column[bin] += m as f64);
    let n = (flow.width * flow.height).max(1) as f64;
    column.iter().map(|&c| (c / n) as f32).collect()
}

/// Visual impact envelope: at each frame, the total deceleration across
/// directions, `Σ_θ max(0, D[t−1, θ] − D[t, θ])`, the visual analogue of the
/// onset envelope's rectified flux. Frame 0 is 0.
pub fn impact_envelope(directograms: &[Vec<f32>]) -> Vec<f32> {
    directograms
        .iter()
        .enumerate()
        .map(|(t, d)| match t {
            0 => 0.0,
            t => directograms[t - 1].iter().zip(d).map(|(before, now)| (before - now).max(0.0)).sum(),
        })
        .collect()
}

/// Parameters of [`visual_beats`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VisualBeatParams {
    /// Directogram bins.
    pub bins: usize,
    /// Peak picking on the normalised envelope (frames at the video's frame rate).
    pub peaks: PeakPickParams,
}

impl VisualBeatParams {
    /// Defaults for `fps`: a beat stands out from its ±0.25 s neighbourhood
    /// and beats are at least ~0.2 s apart.
    pub fn for_fps(fps: f64) -> VisualBeatParams {
        let frames = |s: f64| (s * fps).round().max(1.0) as usize;
        VisualBeatParams {
            bins: 64,
            peaks: PeakPickParams {
                pre_max: frames(0.2),
                post_max: frames(0.2),
                pre_avg: frames(0.25),
                post_avg: frames(0.25),
                delta: 0.1,
                wait: frames(0.2).saturating_sub(1),
            },
        }
    }
}

/// Visual beat frames: peaks of the impact envelope (normalised to its
/// maximum). Index flows by their second frame (flow `t` takes frame `t − 1`
/// to frame `t`), so a peak at `t` is the frame where the motion stopped.
pub fn visual_beats(envelope: &[f32], params: &VisualBeatParams) -> Vec<usize> {
    let max = envelope.iter().copied().fold(0f32, f32::max);
    if max <= 0.0 {
        return Vec::new();
    }
    let normalized: Vec<f32> = envelope.iter().map(|&e| e / max).collect();
    peak_pick(&normalized, &params.peaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block moving right at `speed`, on a static background.
    fn block(speed: f32) -> Flow {
        let mut flow = Flow::zeros(20, 20);
        for y in 5..15 {
            for x in 5..15 {
                flow.uv[2 * (y * 20 + x)] = speed;
            }
        }
        flow
    }

    #[test]
    fn a_sudden_stop_is_an_impact() {
        // Accelerate for 6 frames, stop dead, rest, again.
        let speeds = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0];
        let directograms: Vec<Vec<f32>> = speeds.iter().map(|&s| directogram(&block(s), 8)).collect();
        let envelope = impact_envelope(&directograms);
        assert_eq!(envelope[7], 6.0 * 100.0 / 400.0);
        assert!(envelope.iter().enumerate().all(|(t, &e)| e == 0.0 || t == 7 || t == 15), "{envelope:?}");
        assert_eq!(visual_beats(&envelope, &VisualBeatParams::for_fps(8.0)), vec![7, 15]);
        assert!(visual_beats(&[0.0; 10], &VisualBeatParams::for_fps(8.0)).is_empty());
    }

    #[test]
    fn directogram_bins_by_direction() {
        let d = directogram(&block(2.0), 4);
        assert_eq!(d, vec![0.0, 0.0, 200.0 / 400.0, 0.0]);
    }
}
