//! MuDaR's losses (Eq. 18-20) against an independent PyTorch implementation
//! (`tests/torch/losses.py`), same inputs: values and the gradients of the
//! joint loss with respect to every input, to 1e-4.

mod common;

use std::collections::BTreeMap;

use mudar_operators::model::{focal_loss, joint_loss, triplet_loss};
use tch::{Kind, Tensor};

const MARGIN: f64 = 0.5;
const ALPHA: f64 = 0.25;
const GAMMA: f64 = 2.0;

fn close(ours: &Tensor, theirs: &Tensor, what: &str) {
    assert_eq!(ours.size(), theirs.size(), "{what}");
    let error = (ours.to_kind(Kind::Double) - theirs.to_kind(Kind::Double)).abs().max().double_value(&[]);
    assert!(error <= 1e-4, "{what}: differs from PyTorch by {error}");
}

#[test]
fn losses_and_gradients_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    common::run_reference("torch/losses.py", dir.path());
    let reference: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(dir.path().join("losses.safetensors")).unwrap().into_iter().collect();
    let input = |name: &str| reference[name].to_kind(Kind::Double).set_requires_grad(true);
    let (visual, positive, negative, logits) = (input("visual"), input("positive"), input("negative"), input("logits"));
    let targets = &reference["targets"];

    let triplet = triplet_loss(&visual, &positive, &negative, MARGIN);
    let focal = focal_loss(&logits, targets, ALPHA, GAMMA);
    close(&triplet, &reference["triplet"], "triplet loss (Eq. 18)");
    close(&focal, &reference["focal"], "focal loss (Eq. 19)");
    let joint = joint_loss(&triplet, &focal, 1.0, 0.5);
    close(&joint, &reference["joint"], "joint loss (Eq. 20)");

    joint.backward();
    close(&visual.grad(), &reference["grad_visual"], "dL/dvisual");
    close(&positive.grad(), &reference["grad_positive"], "dL/dpositive");
    close(&negative.grad(), &reference["grad_negative"], "dL/dnegative");
    close(&logits.grad(), &reference["grad_logits"], "dL/dlogits");
}

#[test]
fn focal_loss_without_focusing_is_weighted_cross_entropy() {
    // γ = 0: −α_t log p_t, by hand for p = σ(0) = 0.5 and σ(2).
    let logits = Tensor::from_slice(&[0.0f64, 2.0, 2.0]);
    let targets = Tensor::from_slice(&[1.0f64, 1.0, 0.0]);
    let loss = Vec::<f64>::try_from(focal_loss(&logits, &targets, 0.25, 0.0)).unwrap();
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let expected = [-0.25 * 0.5f64.ln(), -0.25 * sigmoid(2.0).ln(), -0.75 * (1.0 - sigmoid(2.0)).ln()];
    for (a, b) in loss.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{loss:?} vs {expected:?}");
    }
    // A triplet already separated by more than the margin costs nothing.
    let v = Tensor::from_slice(&[0.0f64, 0.0]).view([1, 2]);
    let (near, far) =
        (Tensor::from_slice(&[0.1f64, 0.0]).view([1, 2]), Tensor::from_slice(&[3.0f64, 0.0]).view([1, 2]));
    assert_eq!(triplet_loss(&v, &near, &far, 0.5).double_value(&[]), 0.0);
    assert!((triplet_loss(&v, &far, &near, 0.5).double_value(&[]) - (9.0 - 0.01 + 0.5)).abs() < 1e-12);
}
