//! The motion features of one video, built flow by flow: HOOF, motion energy
//! and the directogram per frame, and at the end the visual impact envelope
//! and its beats.

use super::beats::{VisualBeatParams, directogram, impact_envelope, visual_beats};
use super::flow::Flow;
use super::hoof::{HoofParams, hoof, motion_energy};

/// Per-frame motion of a video; entry `t` describes the flow from frame `t`
/// to frame `t + 1`.
#[derive(Clone, Debug)]
pub struct MotionTrack {
    hoof_params: HoofParams,
    beat_params: VisualBeatParams,
    pub hoof: Vec<Vec<f32>>,
    pub motion_energy: Vec<f32>,
    directograms: Vec<Vec<f32>>,
}

/// What [`MotionTrack::finish`] gives.
#[derive(Clone, Debug, PartialEq)]
pub struct VisualRhythm {
    pub impact_envelope: Vec<f32>,
    /// Indices into the track's flows.
    pub beats: Vec<usize>,
}

impl MotionTrack {
    pub fn new(hoof_params: HoofParams, beat_params: VisualBeatParams) -> MotionTrack {
        MotionTrack { hoof_params, beat_params, hoof: Vec::new(), motion_energy: Vec::new(), directograms: Vec::new() }
    }

    /// Adds the next flow.
    pub fn push(&mut self, flow: &Flow) {
        self.hoof.push(hoof(flow, &self.hoof_params));
        self.motion_energy.push(motion_energy(flow));
        self.directograms.push(directogram(flow, self.beat_params.bins));
    }

    pub fn len(&self) -> usize {
        self.hoof.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hoof.is_empty()
    }

    /// The impact envelope and visual beats; they need every flow, as the
    /// beats' peak picking normalises by the envelope's maximum.
    pub fn finish(&self) -> VisualRhythm {
        let impact_envelope = impact_envelope(&self.directograms);
        let beats = visual_beats(&impact_envelope, &self.beat_params);
        VisualRhythm { impact_envelope, beats }
    }
}
