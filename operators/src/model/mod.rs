//! The MuDaR model (paper Sec. 3), in tch. So far: its losses.

pub mod losses;

pub use losses::{focal_loss, joint_loss, triplet_loss};
