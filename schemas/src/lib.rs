//! Row types and schemas of the tables mudar writes.
//!
//! Every table carries [`SCHEMA_VERSION`] in its metadata; bump it whenever a
//! field is added, removed or changes meaning.

mod media;
mod rows;
pub mod tables;

pub use media::{AudioStreamInfo, MediaInfo, VideoStreamInfo};
pub use rows::{AudioFrameRow, ClipRow, FeedEventRow, MediaRow, VideoFrameRow, VideoRow};

/// Version of the row types in this crate, written into every file's metadata.
pub const SCHEMA_VERSION: u32 = 5;
