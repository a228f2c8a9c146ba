//! Training checkpoints: the model's weights and Adam's moments in one
//! safetensors file (`model.NAME`, `adam.m.NAME`, `adam.v.NAME`), and what
//! else resuming needs (step, epoch, seed, configurations) in a JSON file
//! beside it. The JSON is written last and renamed into place, so a
//! checkpoint exists only once both are complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

use super::optim::Adam;

/// Where a training run stands, beside its weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Steps taken (the next step's index).
    pub step: u64,
    /// The seed every random choice of the run derives from.
    pub seed: u64,
    /// The safetensors file, relative to the JSON's folder.
    pub tensors: String,
    /// The run's configuration (model, sampling, optimiser), as the trainer wrote it.
    pub config: serde_json::Value,
}

/// Writes `checkpoint-STEP.safetensors` and `checkpoint-STEP.json` in `dir`,
/// then points `dir/latest.json` at them.
pub fn save(dir: &Path, vs: &nn::VarStore, adam: &Adam, info: &CheckpointInfo) -> Result<PathBuf, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{}: cannot write the {what}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| fail("checkpoint folder", &e))?;
    let stem = format!("checkpoint-{:08}", info.step);
    let mut tensors: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(name, var)| (format!("model.{name}"), var.detach())).collect();
    tensors.extend(adam.state());
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let tensor_file = dir.join(format!("{stem}.safetensors"));
    let partial = dir.join(format!("{stem}.safetensors.tmp"));
    Tensor::write_safetensors(&tensors, &partial).map_err(|e| fail("weights", &e))?;
    std::fs::rename(&partial, &tensor_file).map_err(|e| fail("weights", &e))?;
    let info = CheckpointInfo { tensors: format!("{stem}.safetensors"), ..info.clone() };
    let json = serde_json::to_string_pretty(&info).expect("serialisable");
    for name in [format!("{stem}.json"), "latest.json".to_string()] {
        let partial = dir.join(format!("{name}.tmp"));
        std::fs::write(&partial, &json).map_err(|e| fail("checkpoint description", &e))?;
        std::fs::rename(&partial, dir.join(&name)).map_err(|e| fail("checkpoint description", &e))?;
    }
    Ok(dir.join(format!("{stem}.json")))
}

/// Reads a checkpoint's description: `path` is a checkpoint's JSON, a
/// checkpoint folder (its `latest.json`) or a training run's folder (its
/// `checkpoints/latest.json`).
pub fn read_info(path: &Path) -> Result<(PathBuf, CheckpointInfo), String> {
    let json = match path.is_dir() {
        true if path.join("latest.json").exists() => path.join("latest.json"),
        true => path.join("checkpoints").join("latest.json"),
        false => path.to_owned(),
    };
    let text =
        std::fs::read_to_string(&json).map_err(|e| format!("{}: cannot read the checkpoint: {e}", json.display()))?;
    let info: CheckpointInfo =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a mudar checkpoint: {e}", json.display()))?;
    let folder = json.parent().unwrap_or(Path::new(".")).to_owned();
    Ok((folder, info))
}

/// Loads the weights (and, given an optimiser, its moments) of the
/// checkpoint `info` in `folder` into `vs`.
pub fn load(
    folder: &Path,
    info: &CheckpointInfo,
    vs: &mut nn::VarStore,
    adam: Option<&mut Adam>,
) -> Result<(), String> {
    let file = folder.join(&info.tensors);
    let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&file)
        .map_err(|e| format!("{}: cannot read the checkpoint's weights: {e}", file.display()))?
        .into_iter()
        .collect();
    crate::weights::copy_into(vs, &tensors, "model.", &file)
        .map_err(|e| format!("{e} (another model configuration?)"))?;
    if let Some(adam) = adam {
        adam.restore(&tensors, info.step).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}
