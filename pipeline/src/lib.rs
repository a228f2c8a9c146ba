//! Ingestion and orchestration: GStreamer sources, clip selection, probing,
//! synthetic media files, and the `mudar` command.
//!
//! - [`source`]: decodes any path or URI into mono f32 audio and RGB frames
//!   with media timestamps, over a bounded channel.
//! - [`clip`]: which spans of an input become clips, and cutting a packet
//!   stream into them as it flows.
//! - [`mod@probe`]: duration and tracks of an input.
//! - [`synth`]: renders synthetic dances into real media files.
//! - [`error`]: the typed errors every input can end with.
//! - [`graph`]: the timely extraction graph: sources, music rhythm, flow,
//!   motion and clip stages.
//! - [`train`]: self-supervised MuDaR training from the same graph.
//! - [`live`]: live feeds that reconnect themselves, and the run's metrics.

pub mod classify;
pub mod clip;
pub mod error;
pub mod extract;
pub mod graph;
pub mod input;
pub mod live;
pub mod probe;
pub mod retarget;
pub mod retrieval;
pub mod source;
mod store_read;
pub mod synth;
pub mod train;

pub use clip::{Clip, ClipAssembler, ClipRule, Span};
pub use error::{ErrorKind, MediaError};
pub use probe::{ProbeOptions, probe};
pub use source::{AudioChunk, AudioOutput, MediaSource, Packet, Poll, Resize, SourceConfig, VideoFrame, VideoOutput};

/// Initialises GStreamer once per process (cheap after the first call).
pub fn init() -> Result<(), ErrorKind> {
    gst::init().map_err(|e| ErrorKind::Gstreamer(format!("cannot initialise GStreamer: {e}")))
}
