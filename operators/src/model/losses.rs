//! The losses of MuDaR (paper Sec. 3.3): triplet loss of the implicit
//! pathway (Eq. 18), focal loss of the explicit pathway (Eq. 19) and their
//! weighted sum (Eq. 20).

use tch::Tensor;

/// Eq. 18, the implicit loss over N triplets:
/// `L_im = Σ_i [ ||f'_v − f'_a:pos||²₂ − ||f'_v − f'_a:neg||²₂ + α ]₊`,
/// with `visual`, `positive`, `negative` the refined features [N, D] and
/// `margin` α.
pub fn triplet_loss(visual: &Tensor, positive: &Tensor, negative: &Tensor, margin: f64) -> Tensor {
    let kind = visual.kind();
    (squared_distance(visual, positive) - squared_distance(visual, negative) + margin).relu().sum(kind)
}

/// `||a − b||²₂` of each row of \[N, D\] features: \[N\].
pub fn squared_distance(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).square().sum_dim_intlist(-1, false, a.kind())
}

/// Eq. 19, the explicit loss per frame (Lin et al. 2017):
/// `L_ex = −α_t (1 − p_t)^γ log p_t`, where `p = σ(logits)` is the predicted
/// visual-rhythm probability, `p_t = p` and `α_t = α` on rhythm frames
/// (`targets` 1), `p_t = 1 − p` and `α_t = 1 − α` elsewhere. From logits, so
/// `log p_t` stays finite for confident predictions. Same shape as `logits`.
pub fn focal_loss(logits: &Tensor, targets: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let targets = targets.to_kind(logits.kind());
    // log p_t = log σ(x) on rhythm frames, log σ(−x) = log(1 − σ(x)) elsewhere.
    let signed = logits * (&targets * 2.0 - 1.0);
    let log_p_t = signed.log_sigmoid();
    let alpha_t: Tensor = &targets * (2.0 * alpha - 1.0) + (1.0 - alpha);
    let p_t = log_p_t.exp();
    let modulation = (-p_t + 1.0).pow_tensor_scalar(gamma);
    -(alpha_t * modulation * log_p_t)
}

/// Eq. 20, the joint objective: `L = λ₁ L_im + λ₂ (1/N) Σ_t L_ex,t`, the
/// focal loss averaged over the N frames (of every video in the batch).
pub fn joint_loss(
    implicit: &Tensor,
    explicit_per_frame: &Tensor,
    lambda_implicit: f64,
    lambda_explicit: f64,
) -> Tensor {
    implicit * lambda_implicit + explicit_per_frame.mean(explicit_per_frame.kind()) * lambda_explicit
}
