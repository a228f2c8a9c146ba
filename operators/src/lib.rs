//! Pure compute, no timely inside: each module is usable and testable alone.
//!
//! - [`rhythm`]: music rhythm as librosa computes it (STFT, mel, onset
//!   envelope, onsets, tempo, beats, tempogram), per clip and streaming.
//! - [`synth`]: synthetic dance media with known ground truth (music with
//!   known beats and onsets, a figure whose moves land on them).

pub mod rhythm;
pub mod synth;
