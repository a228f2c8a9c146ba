//! The motion features of one video, flow by flow: HOOF, motion energy and
//! the directogram per frame, the visual impact envelope and its beats. Two
//! forms, as for onsets: [`MotionTrack`] decides the beats over the whole
//! video; [`MotionStream`] emits each frame as soon as its beat is decided.

use super::beats::{VisualBeatParams, directogram, impact_envelope, visual_beats};
use super::flow::Flow;
use super::hoof::{HoofParams, hoof, motion_energy};
use crate::rhythm::onset::{FlaggedFrames, PeakPicker};

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

/// One flow's row of the streaming form.
#[derive(Clone, Debug, PartialEq)]
pub struct MotionFrame {
    /// Index of the flow (from frame `index` to `index + 1`).
    pub index: usize,
    pub hoof: Vec<f32>,
    pub motion_energy: f32,
    /// The visual impact envelope at this flow.
    pub impact: f32,
    pub visual_beat: bool,
}

/// The streaming form of [`MotionTrack`], state bounded per stream: the
/// beats' peak picking normalises by the running maximum of the impact
/// envelope instead of the whole video's (identical decisions from the
/// video's strongest impact on), and waits for the picker's look-ahead.
#[derive(Clone, Debug)]
pub struct MotionStream {
    hoof_params: HoofParams,
    bins: usize,
    previous: Option<Vec<f32>>,
    picker: PeakPicker,
    frames: FlaggedFrames<(Vec<f32>, f32, f32)>,
    next: usize,
}

impl MotionStream {
    pub fn new(hoof_params: HoofParams, beat_params: VisualBeatParams) -> MotionStream {
        MotionStream {
            hoof_params,
            bins: beat_params.bins,
            previous: None,
            picker: PeakPicker::normalizing(beat_params.peaks),
            frames: FlaggedFrames::default(),
            next: 0,
        }
    }

    /// Adds the next flow; returns the frames whose beat is now decided.
    pub fn push(&mut self, flow: &Flow) -> Vec<MotionFrame> {
        let column = directogram(flow, self.bins);
        let impact = match &self.previous {
            Some(before) => impact_envelope(&[before.clone(), column.clone()])[1],
            None => 0.0,
        };
        self.previous = Some(column);
        self.frames.push(self.next, (hoof(flow, &self.hoof_params), motion_energy(flow), impact));
        self.next += 1;
        let peaks = self.picker.push(impact);
        self.frames.peaks(peaks);
        self.release()
    }

    /// Ends the stream: the remaining frames.
    pub fn finish(&mut self) -> Vec<MotionFrame> {
        let peaks = self.picker.finish();
        self.frames.peaks(peaks);
        self.release()
    }

    fn release(&mut self) -> Vec<MotionFrame> {
        self.frames
            .release(self.picker.decided())
            .into_iter()
            .map(|(index, (hoof, motion_energy, impact), visual_beat)| MotionFrame {
                index,
                hoof,
                motion_energy,
                impact,
                visual_beat,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field moving right at `speed` px/frame.
    fn moving(speed: f32) -> Flow {
        Flow { width: 8, height: 8, uv: [speed, 0.0].repeat(64) }
    }

    fn speeds() -> Vec<f32> {
        // Sudden stops (impacts) of decreasing strength, the strongest first.
        let mut s = Vec::new();
        for (k, peak) in [6.0, 5.0, 4.5, 3.0, 4.0, 2.5].iter().enumerate() {
            s.extend([1.0, 2.0, *peak, 0.2 * k as f32, 0.5, 0.8, 1.0, 1.0]);
        }
        s
    }

    #[test]
    fn streaming_equals_whole_video_when_the_strongest_impact_comes_first() {
        let params = (HoofParams::default(), VisualBeatParams::for_fps(8.0));
        let mut track = MotionTrack::new(params.0, params.1);
        let mut stream = MotionStream::new(params.0, params.1);
        let mut frames = Vec::new();
        for speed in speeds() {
            let flow = moving(speed);
            track.push(&flow);
            frames.extend(stream.push(&flow));
        }
        frames.extend(stream.finish());
        let whole = track.finish();
        assert_eq!(frames.iter().map(|f| f.index).collect::<Vec<_>>(), (0..track.len()).collect::<Vec<_>>());
        assert_eq!(frames.iter().map(|f| f.impact).collect::<Vec<_>>(), whole.impact_envelope);
        let beats: Vec<usize> = frames.iter().filter(|f| f.visual_beat).map(|f| f.index).collect();
        assert_eq!(beats, whole.beats);
        assert_eq!(beats.len(), 6, "one beat per stop: {beats:?}");
        assert!(frames.iter().zip(&track.hoof).all(|(f, h)| &f.hoof == h));
    }

    #[test]
    fn frames_come_out_with_bounded_delay() {
        let mut stream = MotionStream::new(HoofParams::default(), VisualBeatParams::for_fps(8.0));
        let look_ahead =
            VisualBeatParams::for_fps(8.0).peaks.post_avg.max(VisualBeatParams::for_fps(8.0).peaks.post_max);
        let mut released = 0;
        for (pushed, speed) in speeds().into_iter().enumerate() {
            released += stream.push(&moving(speed)).len();
            assert!(pushed + 1 - released <= look_ahead, "{released} of {} out", pushed + 1);
        }
    }
}
