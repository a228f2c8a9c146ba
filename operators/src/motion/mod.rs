//! Dance motion (paper Sec. 3.1.2): flow fields, HOOF, motion features and
//! model-free visual beats. Flow estimators come in later modules.

pub mod beats;
pub mod flow;
pub mod hoof;

pub use beats::{VisualBeatParams, directogram, impact_envelope, visual_beats};
pub use flow::{FloError, Flow};
pub use hoof::{HoofParams, first_difference, hoof, motion_energy, orientation_bin};
