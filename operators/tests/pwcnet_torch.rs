//! PWC-Net against an independent PyTorch implementation
//! (`tests/torch/pwcnet.py`) with the same random weights, through the
//! checkpoint converter: both public checkpoint layouts convert to the same
//! tensors, and the flow agrees to 1e-4 px on sizes that are and are not
//! multiples of 64, batches of 1 to 3.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mudar_operators::motion::PwcNet;
use mudar_operators::weights::WeightsError;
use tch::{Device, Tensor};

fn convert(checkpoint: &Path, out: &Path) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/convert_pwcnet.py");
    Command::new(common::python()).arg(script).arg(checkpoint).arg(out).output().expect("python runs")
}

fn read(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

struct Reference {
    dir: tempfile::TempDir,
    weights: PathBuf,
}

fn reference() -> Reference {
    let dir = tempfile::tempdir().unwrap();
    common::run_reference("torch/pwcnet.py", dir.path());
    let weights = dir.path().join("nvlabs.safetensors");
    let output = convert(&dir.path().join("nvlabs.pth.tar"), &weights);
    assert!(output.status.success(), "converter failed: {}", String::from_utf8_lossy(&output.stderr));
    Reference { dir, weights }
}

#[test]
fn flow_matches_pytorch() {
    let reference = reference();
    let (net, _vs) = PwcNet::load(&reference.weights, Device::Cpu).unwrap();
    let cases = read(&reference.dir.path().join("cases.safetensors"));
    for k in 0..3 {
        let case = |what: &str| &cases[&format!("case{k}.{what}")];
        let flow = net.flow(case("first"), case("second"));
        let error = max_abs_diff(&flow, case("flow"));
        assert!(error <= 1e-4, "case {k} {:?}: flow differs from PyTorch by {error} px", case("first").size());
        let features = tch::no_grad(|| net.pyramid().features(case("first")).pop().unwrap());
        let error = max_abs_diff(&features, case("features6"));
        assert!(error <= 1e-5, "case {k}: level-6 features differ from PyTorch by {error}");
    }
}

#[test]
fn both_checkpoint_layouts_convert_to_the_same_weights() {
    let reference = reference();
    let sniklaus = reference.dir.path().join("sniklaus.safetensors");
    let output = convert(&reference.dir.path().join("sniklaus.pytorch"), &sniklaus);
    assert!(output.status.success(), "converter failed: {}", String::from_utf8_lossy(&output.stderr));
    let (a, b) = (read(&reference.weights), read(&sniklaus));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, tensor) in &a {
        assert!(tensor.equal(&b[name]), "{name} differs between the two layouts");
    }
}

#[test]
fn converter_names_the_tensor_of_the_wrong_shape() {
    let reference = reference();
    let out = reference.dir.path().join("wrong.safetensors");
    let output = convert(&reference.dir.path().join("wrong_shape.pth"), &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("decoder3.dense1.weight is [128, 276, 3, 3], the network needs [128, 277, 3, 3]"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn loading_names_missing_and_unexpected_tensors() {
    let reference = reference();
    let mut tensors = read(&reference.weights);
    tensors.remove("context.conv3.bias");
    tensors.insert("context.conv9.bias".into(), Tensor::zeros([2], (tch::Kind::Float, Device::Cpu)));
    let edited = reference.dir.path().join("edited.safetensors");
    Tensor::write_safetensors(&tensors.into_iter().collect::<Vec<_>>(), &edited).unwrap();
    match PwcNet::load(&edited, Device::Cpu) {
        Err(WeightsError::Mismatch { missing, unexpected, wrong_shape, .. }) => {
            assert_eq!(missing, ["context.conv3.bias"]);
            assert_eq!(unexpected, ["context.conv9.bias"]);
            assert!(wrong_shape.is_empty());
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let not_weights = reference.dir.path().join("cases.txt");
    std::fs::write(&not_weights, "not safetensors").unwrap();
    assert!(matches!(PwcNet::load(&not_weights, Device::Cpu), Err(WeightsError::Read { .. })));
}
