//! The two flow backends behind one call: PWC-Net when the user has weights,
//! the weight-free DIS otherwise.

use std::path::Path;

use tch::{Device, nn};

use super::dis::{DisParams, dis_flows};
use super::flow::Flow;
use super::image::Gray;
use super::pwcnet::{PwcNet, flow_fields, rgb_batch};
use crate::weights::WeightsError;

#[derive(Debug)]
pub enum FlowBackend {
    Dis(DisParams),
    PwcNet {
        net: Box<PwcNet>,
        /// Owns the weights `net` uses.
        vs: nn::VarStore,
    },
}

impl FlowBackend {
    /// PWC-Net with the weights of a safetensors file (see
    /// `scripts/convert_pwcnet.py`), on `device`, in half precision if `half`
    /// (meant for CUDA; CPU kernels lack some half operations).
    pub fn pwcnet(weights: &Path, device: Device, half: bool) -> Result<FlowBackend, WeightsError> {
        let (net, mut vs) = PwcNet::load(weights, device)?;
        if half {
            vs.half();
        }
        Ok(FlowBackend::PwcNet { net: Box::new(net), vs })
    }

    pub fn name(&self) -> &'static str {
        match self {
            FlowBackend::Dis(_) => "dis",
            FlowBackend::PwcNet { .. } => "pwcnet",
        }
    }

    /// Flow from the first to the second frame of each pair: interleaved
    /// 8-bit RGB frames, all `width`×`height`. PWC-Net runs the pairs as one batch.
    pub fn flows(&self, pairs: &[(&[u8], &[u8])], width: usize, height: usize) -> Vec<Flow> {
        if pairs.is_empty() {
            return Vec::new();
        }
        match self {
            FlowBackend::Dis(params) => {
                let grays: Vec<(Gray, Gray)> = pairs
                    .iter()
                    .map(|(a, b)| (Gray::from_rgb(a, width, height), Gray::from_rgb(b, width, height)))
                    .collect();
                dis_flows(&grays.iter().map(|(a, b)| (a, b)).collect::<Vec<_>>(), params)
            }
            FlowBackend::PwcNet { net, vs } => {
                let batch = |frames: Vec<&[u8]>| rgb_batch(&frames, width, height).to_device(vs.device());
                let first = batch(pairs.iter().map(|p| p.0).collect());
                let second = batch(pairs.iter().map(|p| p.1).collect());
                flow_fields(&net.flow(&first, &second))
            }
        }
    }
}
