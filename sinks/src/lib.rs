//! Where mudar's results go.
//!
//! - [`media_writer`]: raw frames and audio into real media files (GStreamer
//!   encoders and muxers behind `appsrc`).

pub mod media_writer;

pub use media_writer::{MediaFormat, MediaWriter, VideoParams, WriteError};
