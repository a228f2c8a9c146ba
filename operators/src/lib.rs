//! Pure compute, no timely inside: each module is usable and testable alone.
//!
//! - [`synth`]: synthetic dance media with known ground truth (music with
//!   known beats and onsets, a figure whose moves land on them).

pub mod synth;
