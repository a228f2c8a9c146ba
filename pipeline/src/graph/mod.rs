//! The extraction graph (DESIGN.md, "The graph"), in timely dataflow:
//!
//! ```text
//! sources ─(id, Event)─┬─ music_rhythm ─────────────────────────────────────┐
//!  (driver)            ├─ frame_pairs ─ optical_flow ─ motion_features ─┬────┤
//!                      ├──────────────────────────────── clip_features ◄┘ ───┤
//!                      └─────────────────────────────────────────────────────┴─ (id, Record) ─ store sink
//! ```
//!
//! Every stage exchanges by stream id, so one worker owns a stream's state
//! (the STFT tail, the previous frame, the open clips); the flow stage batches
//! frame pairs across the streams its worker owns. Timestamps are the driver's
//! epochs: a stream's `Closed` event carries the epoch after its last packet,
//! every stage emits a stream's last rows at that epoch, so once the frontier
//! passes it the store sink knows the stream's rows are complete.

mod clips;
mod driver;
mod motion;
mod music;
pub mod store;
pub mod views;

use mudar_schemas::{AudioFrameRow, ClipRow, VideoFrameRow};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

pub use clips::{ClipFeatures, ClipParams, clip_row};
pub use driver::{Driver, DriverConfig, EventInput, Progress};
pub use motion::{FlowItem, FramePair, FramePairs, MotionFeatures, OpticalFlow, PairItem};
pub use music::MusicRhythm;

use crate::source::{AudioChunk, VideoFrame};

/// An input's index in the run's input list: the key every stage exchanges by.
pub type StreamId = u64;

/// What the driver knows of an input when it opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub input: String,
    pub duration_s: Option<f64>,
    pub has_audio: bool,
    pub has_video: bool,
    /// Set for a live input: its rows are committed window by window, and carry capture times.
    pub live: Option<Live>,
}

/// A live input's connection, as its source opened it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// 0, then one more at each reconnect.
    pub connection: u32,
    /// Capture time minus media time, µs (see `tables::Capture`); `None` when the source
    /// gave its packets no capture time.
    pub capture_offset_us: Option<i64>,
    /// Media time of the connection's first packet, seconds.
    pub start_s: f64,
}

/// Why an input (or part of its processing) failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// A stable code (`ErrorKind::code`, or the stage's own).
    pub kind: String,
    pub message: String,
}

/// What the sources put into the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Opened(Opened),
    Audio(AudioChunk),
    Video(VideoFrame),
    /// A live connection's sender clock minus this machine's capture clock, µs, once RTCP
    /// told it (see `Live::capture_offset_us`).
    SenderClock(i64),
    /// The input ended, cleanly or not; nothing more comes for it.
    Closed(Option<Failure>),
}

/// What a trained MuDaR says about a clip: the store sink writes it into the
/// clip's `clips` row and the `video_frames` rows of its frames.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelOutput {
    /// The clip's index and start, as in its `clips` row.
    pub clip: u32,
    pub start_s: f64,
    /// Media time of each frame the model saw, seconds.
    pub frame_times: Vec<f64>,
    /// Visual-rhythm probability and decision per frame.
    pub rhythm_probability: Vec<f32>,
    pub rhythm: Vec<bool>,
    pub visual_embedding: Vec<f32>,
    pub audio_embedding: Vec<f32>,
}

/// What the stages give the store sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Opened(Opened),
    SenderClock(i64),
    Audio(AudioFrameRow),
    Video(VideoFrameRow),
    Clip(ClipRow),
    /// A trained model's view of one clip (`mudar extract --model`).
    Model(ModelOutput),
    /// A stage could not process the stream (the input is reported failed).
    Failed(Failure),
    Closed(Option<Failure>),
}

/// The exchange key of keyed data.
pub(crate) fn stream_of<D>(item: &(StreamId, D)) -> u64 {
    item.0
}

/// Streams whose events have closed, each held with a capability at its
/// `Closed` epoch until both inputs of a two-input operator have passed that
/// epoch: then every row of the stream has arrived on both.
#[derive(Default)]
pub(crate) struct Closing(Vec<(Capability<u64>, StreamId)>);

impl Closing {
    pub(crate) fn push(&mut self, capability: Capability<u64>, id: StreamId) {
        self.0.push((capability, id));
    }

    /// Hands each stream whose inputs are both complete to `finish`, with
    /// its capability to emit its last rows at, and forgets it.
    pub(crate) fn finish_complete(
        &mut self,
        frontiers: [&MutableAntichain<u64>; 2],
        mut finish: impl FnMut(&Capability<u64>, StreamId),
    ) {
        self.0.retain(|(capability, id)| {
            let complete = frontiers.iter().all(|frontier| !frontier.less_equal(capability.time()));
            if complete {
                finish(capability, *id);
            }
            !complete
        });
    }
}
