//! Adam (Kingma & Ba 2015) with a warm-up and cosine learning-rate schedule
//! and clipping by the global gradient norm, over a model's variables in
//! name order. Written out rather than taken from libtorch so its state (the
//! moments and the step) can be checkpointed and restored exactly, and so
//! gradients can travel as one flat vector between data-parallel workers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

/// Optimiser settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamParams {
    /// Peak learning rate (the paper: 1e-4).
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Steps of linear warm-up from 0 to the peak.
    pub warmup_steps: u64,
    /// Steps of the whole run; after the warm-up the rate follows a cosine
    /// down to 0 at this step. 0: constant after the warm-up.
    pub total_steps: u64,
    /// Largest global L2 norm of the gradient; larger ones are scaled down. 0: no clipping.
    pub max_grad_norm: f64,
}

impl Default for AdamParams {
    fn default() -> AdamParams {
        AdamParams {
            learning_rate: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            warmup_steps: 0,
            total_steps: 0,
            max_grad_norm: 1.0,
        }
    }
}

impl AdamParams {
    /// The learning rate of step `step` (counted from 0).
    pub fn rate_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.learning_rate * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if self.total_steps <= self.warmup_steps {
            return self.learning_rate;
        }
        let progress = (step - self.warmup_steps) as f64 / (self.total_steps - self.warmup_steps) as f64;
        self.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }
}

/// Adam's state for every trainable variable of a `VarStore`.
#[derive(Debug)]
pub struct Adam {
    params: AdamParams,
    /// (name, variable, first moment, second moment), sorted by name.
    slots: Vec<(String, Tensor, Tensor, Tensor)>,
    /// Steps taken.
    step: u64,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, params: AdamParams) -> Adam {
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let trainable: Vec<Tensor> = vs.trainable_variables();
        let slots = variables
            .into_iter()
            .filter(|(_, var)| trainable.iter().any(|t| t.data_ptr() == var.data_ptr()))
            .map(|(name, var)| {
                let (m, v) = (var.zeros_like(), var.zeros_like());
                (name, var, m, v)
            })
            .collect();
        Adam { params, slots, step: 0 }
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Elements of all trainable variables together.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|(_, var, _, _)| var.numel()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every variable's gradient (zeros where none), flattened in name order.
    pub fn flat_gradient(&self) -> Vec<f32> {
        let parts: Vec<Tensor> = self
            .slots
            .iter()
            .map(|(_, var, _, _)| {
                let grad = var.grad();
                if grad.defined() { grad.to_kind(Kind::Float).reshape([-1]) } else { var.zeros_like().reshape([-1]) }
            })
            .collect();
        Vec::<f32>::try_from(Tensor::cat(&parts, 0).to_device(tch::Device::Cpu)).expect("float gradients")
    }

    /// Clears every variable's gradient.
    pub fn zero_grad(&mut self) {
        for (_, var, _, _) in &mut self.slots {
            let mut grad = var.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// One update from a flat gradient (as [`Adam::flat_gradient`] lays it
    /// out), after clipping it; returns its norm before clipping.
    pub fn apply(&mut self, gradient: &[f32]) -> f64 {
        assert_eq!(gradient.len(), self.len(), "gradient of the wrong length");
        let norm = gradient.iter().map(|&g| g as f64 * g as f64).sum::<f64>().sqrt();
        let scale = if self.params.max_grad_norm > 0.0 && norm > self.params.max_grad_norm {
            self.params.max_grad_norm / norm
        } else {
            1.0
        };
        let rate = self.params.rate_at(self.step);
        self.step += 1;
        let (b1, b2) = (self.params.beta1, self.params.beta2);
        let (bias1, bias2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        let mut offset = 0;
        tch::no_grad(|| {
            for (_, var, m, v) in &mut self.slots {
                let n = var.numel();
                let g = Tensor::from_slice(&gradient[offset..offset + n])
                    .to_device(var.device())
                    .to_kind(var.kind())
                    .view(var.size().as_slice())
                    * scale;
                offset += n;
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let update = (&*m / bias1) / ((&*v / bias2).sqrt() + self.params.epsilon) * rate;
                let _ = var.f_sub_(&update).expect("an update of the variable's shape");
            }
        });
        norm
    }

    /// A step that changes nothing but the step count: the overflowed step of
    /// mixed precision, skipped so the schedule stays on the data's steps.
    pub fn skip(&mut self) {
        self.step += 1;
    }

    /// The moments as named tensors (`adam.m.NAME`, `adam.v.NAME`), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|(name, _, m, v)| {
                [(format!("adam.m.{name}"), m.shallow_clone()), (format!("adam.v.{name}"), v.shallow_clone())]
            })
            .collect()
    }

    /// Restores the moments from `tensors` (as [`Adam::state`] names them) and the step count.
    pub fn restore(&mut self, tensors: &BTreeMap<String, Tensor>, step: u64) -> Result<(), String> {
        for (name, _, m, v) in &mut self.slots {
            for (which, slot) in [("m", m), ("v", v)] {
                let key = format!("adam.{which}.{name}");
                let stored = tensors.get(&key).ok_or_else(|| format!("the checkpoint has no {key}"))?;
                if stored.size() != slot.size() {
                    return Err(format!("{key} is {:?}, the model needs {:?}", stored.size(), slot.size()));
                }
                *slot = stored.to_kind(slot.kind()).to_device(slot.device());
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Dynamic loss scaling for float16 mixed precision (Micikevicius et al.
/// 2018; PyTorch's `GradScaler`): the loss is multiplied by `scale` before
/// backward so that small gradients survive float16, and the gradient is
/// divided back before the step. A gradient that overflowed skips its step
/// and halves the scale; `growth_interval` good steps in a row double it.
/// Powers of two, so scaling and unscaling are exact in float32.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    pub scale: f64,
    pub good_steps: u64,
    pub growth_interval: u64,
}

impl LossScale {
    /// PyTorch's defaults: 2^16, doubling after 2000 good steps.
    pub fn new() -> LossScale {
        LossScale { scale: 65536.0, good_steps: 0, growth_interval: 2000 }
    }

    /// Divides the scale out of `gradient`; `false` (and a halved scale)
    /// when it holds an infinity or NaN, so the step must be skipped.
    pub fn unscale(&mut self, gradient: &mut [f32]) -> bool {
        if !gradient.iter().all(|g| g.is_finite()) {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
            return false;
        }
        let inverse = (1.0 / self.scale) as f32;
        gradient.iter_mut().for_each(|g| *g *= inverse);
        self.good_steps += 1;
        if self.good_steps == self.growth_interval {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_scale_skips_overflows_and_grows_back() {
        let mut scale = LossScale { scale: 8.0, good_steps: 0, growth_interval: 2 };
        let mut gradient = vec![8.0, -4.0, 0.5];
        assert!(scale.unscale(&mut gradient));
        assert_eq!(gradient, vec![1.0, -0.5, 0.0625]);
        assert_eq!((scale.scale, scale.good_steps), (8.0, 1));
        assert!(!scale.unscale(&mut [1.0, f32::INFINITY]));
        assert!(!scale.unscale(&mut [f32::NAN]));
        assert_eq!((scale.scale, scale.good_steps), (2.0, 0));
        assert!(scale.unscale(&mut [2.0]));
        assert!(scale.unscale(&mut [2.0]));
        assert_eq!((scale.scale, scale.good_steps), (4.0, 0), "two good steps double it");
    }

    #[test]
    fn schedule_warms_up_then_follows_a_cosine() {
        let p = AdamParams { learning_rate: 1.0, warmup_steps: 4, total_steps: 14, ..Default::default() };
        assert_eq!(p.rate_at(0), 0.25);
        assert_eq!(p.rate_at(3), 1.0);
        assert!((p.rate_at(4) - 1.0).abs() < 1e-12);
        assert!((p.rate_at(9) - 0.5).abs() < 1e-12, "half way down the cosine");
        assert!(p.rate_at(14).abs() < 1e-12);
        let constant = AdamParams { learning_rate: 0.1, ..Default::default() };
        assert_eq!(constant.rate_at(1000), 0.1);
    }

    #[test]
    fn adam_steps_as_written_by_hand() {
        // One scalar parameter x = 1, gradient 2 then 1, lr 0.1, no clipping.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let x = vs.root().var("x", &[1], nn::Init::Const(1.0));
        let params = AdamParams { learning_rate: 0.1, max_grad_norm: 0.0, ..Default::default() };
        let mut adam = Adam::new(&vs, params);
        assert_eq!(adam.apply(&[2.0]), 2.0);
        // m̂ = 2, v̂ = 4 → step 0.1 · 2 / (2 + 1e-8).
        let after_one = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8);
        assert!((x.double_value(&[0]) - after_one).abs() < 1e-6);
        adam.apply(&[1.0]);
        let m = (0.9 * 0.1 * 2.0 + 0.1 * 1.0) / (1.0 - 0.81);
        let v = (0.999 * 0.001 * 4.0 + 0.001 * 1.0) / (1.0 - 0.999f64.powi(2));
        let after_two = after_one - 0.1 * m / (v.sqrt() + 1e-8);
        assert!((x.double_value(&[0]) - after_two).abs() < 1e-6);
        // Clipping: a gradient of norm 10 with max 1 moves like one of norm 1.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let y = vs.root().var("y", &[2], nn::Init::Const(0.0));
        let mut clipped = Adam::new(&vs, AdamParams { learning_rate: 0.1, max_grad_norm: 1.0, ..Default::default() });
        assert!((clipped.apply(&[6.0, 8.0]) - 10.0).abs() < 1e-12);
        assert!((y.double_value(&[0]) + 0.1).abs() < 1e-6, "Adam's first step is lr·sign");
    }
}
