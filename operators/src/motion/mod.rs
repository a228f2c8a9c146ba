//! Dance motion (paper Sec. 3.1.2): flow fields, HOOF, motion features and
//! model-free visual beats, and the two flow backends: PWC-Net (tch) and the
//! weight-free DIS.

pub mod backend;
pub mod beats;
pub mod dis;
pub mod flow;
pub mod hoof;
pub mod image;
mod parallel;
pub mod pwcnet;
pub mod track;
mod variational;
pub mod warp;

pub use backend::FlowBackend;
pub use beats::{VisualBeatParams, directogram, impact_envelope, visual_beats};
pub use dis::{DisParams, average_epe, dis_flow, dis_flows};
pub use flow::{FloError, Flow};
pub use hoof::{HoofParams, first_difference, hoof, motion_energy, orientation_bin};
pub use image::Gray;
pub use pwcnet::{FeaturePyramid, PwcNet};
pub use track::{MotionFrame, MotionStream, MotionTrack, VisualRhythm};
