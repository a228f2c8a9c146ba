//! Loading network weights from safetensors with the checks a user needs when
//! a file comes from elsewhere: every tensor the network has must be there,
//! with its shape, and nothing else.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tch::{Tensor, nn::VarStore};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{}: cannot read the weights: {source}", path.display())]
    Read { path: PathBuf, source: tch::TchError },
    /// Tensors are named as in the file.
    #[error("{}: the weights do not fit the network:{}", path.display(), describe(missing, unexpected, wrong_shape))]
    Mismatch {
        path: PathBuf,
        /// In the network, not in the file.
        missing: Vec<String>,
        /// In the file, not in the network.
        unexpected: Vec<String>,
        /// (name, shape in the network, shape in the file).
        wrong_shape: Vec<(String, Vec<i64>, Vec<i64>)>,
    },
}

fn describe(missing: &[String], unexpected: &[String], wrong_shape: &[(String, Vec<i64>, Vec<i64>)]) -> String {
    const SHOWN: usize = 8;
    let mut out = String::new();
    let mut list = |what: &str, names: Vec<String>| {
        if !names.is_empty() {
            let more = names.len().saturating_sub(SHOWN);
            let shown = names.into_iter().take(SHOWN).collect::<Vec<_>>().join(", ");
            let _ =
                write!(out, " {what}: {shown}{};", if more > 0 { format!(" and {more} more") } else { String::new() });
        }
    };
    list("missing", missing.to_vec());
    list("unexpected", unexpected.to_vec());
    list(
        "wrong shape",
        wrong_shape.iter().map(|(name, want, got)| format!("{name} is {got:?}, the network needs {want:?}")).collect(),
    );
    out.pop();
    out
}

/// Copies the tensors of the safetensors file `path` into `vs`, converting
/// them to each variable's kind and device; fails without changing `vs` when
/// the names or shapes differ.
pub fn load_safetensors(vs: &mut VarStore, path: &Path) -> Result<(), WeightsError> {
    copy_into(vs, &read_safetensors(path)?, "", path)
}

/// Every tensor of a safetensors file, by name.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>, WeightsError> {
    let read = |source| WeightsError::Read { path: path.to_owned(), source };
    Ok(Tensor::read_safetensors(path).map_err(read)?.into_iter().collect())
}

/// Copies `tensors[prefix + name]` into each variable `name` of `vs` (a file
/// read from `path` that may hold other tensors beside the prefix's), with
/// the checks of [`load_safetensors`] over the names under `prefix`.
pub fn copy_into(
    vs: &mut VarStore,
    tensors: &BTreeMap<String, Tensor>,
    prefix: &str,
    path: &Path,
) -> Result<(), WeightsError> {
    let file: BTreeMap<&str, &Tensor> =
        tensors.iter().filter_map(|(name, t)| Some((name.strip_prefix(prefix)?, t))).collect();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let missing: Vec<String> =
        variables.iter().filter(|(name, _)| !file.contains_key(name.as_str())).map(|(name, _)| name.clone()).collect();
    let unexpected: Vec<String> =
        file.keys().filter(|name| !variables.iter().any(|(n, _)| n == *name)).map(|name| name.to_string()).collect();
    let wrong_shape: Vec<_> = variables
        .iter()
        .filter_map(|(name, var)| {
            let stored = file.get(name.as_str())?;
            (stored.size() != var.size()).then(|| (name.clone(), var.size(), stored.size()))
        })
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && wrong_shape.is_empty()) {
        // Named as in the file, prefix and all.
        let named = |names: Vec<String>| names.into_iter().map(|name| format!("{prefix}{name}")).collect();
        let wrong_shape =
            wrong_shape.into_iter().map(|(name, want, got)| (format!("{prefix}{name}"), want, got)).collect();
        return Err(WeightsError::Mismatch {
            path: path.to_owned(),
            missing: named(missing),
            unexpected: named(unexpected),
            wrong_shape,
        });
    }
    tch::no_grad(|| {
        for (name, mut var) in variables {
            var.copy_(&file[name.as_str()].to_kind(var.kind()).to_device(var.device()));
        }
    });
    Ok(())
}
