//! Where mudar's results go.
//!
//! - [`store`]: the Parquet feature store, one folder per table, written with exactly-once,
//!   resumable commits (temp files, one append-only manifest per writer, crash recovery).
//! - [`media_writer`]: raw frames and audio into real media files (GStreamer
//!   encoders and muxers behind `appsrc`).

pub mod media_writer;
pub mod store;

pub use media_writer::{MediaFormat, MediaWriter, VideoParams, WriteError};
pub use store::{StoreConfig, StoreError, StoreWriter};
