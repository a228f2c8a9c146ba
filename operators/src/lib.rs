//! Pure compute, no timely inside: each module is usable and testable alone.
//!
//! - [`motion`]: flow fields (`.flo`, colour code), PWC-Net and DIS flow,
//!   HOOF, motion features, model-free visual beats.
//! - [`metrics`]: downstream metrics (Beat Align Score, event matching,
//!   retrieval's AP, R@K, P@K).
//! - [`model`]: the MuDaR model (so far its losses, Eq. 18–20).
//! - [`retarget`]: music-dance retargeting (Eq. 22–23: DTW on rhythm
//!   points; temporal shifting and acceleration) and how well it aligns.
//! - [`retrieval`]: music-to-dance similarity (Eq. 21: embeddings, rhythm,
//!   both).
//! - [`rhythm`]: music rhythm as librosa computes it (STFT, mel, onset
//!   envelope, onsets, tempo, beats, tempogram), per clip and streaming.
//! - [`synth`]: synthetic dance media with known ground truth (music with
//!   known beats and onsets, a figure whose moves land on them).
//! - [`weights`]: checked loading of network weights (safetensors).

pub mod metrics;
pub mod model;
pub mod motion;
pub mod retarget;
pub mod retrieval;
pub mod rhythm;
pub mod synth;
pub mod weights;
