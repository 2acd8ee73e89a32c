//! AdamW with decoupled weight decay (Loshchilov and Hutter, 2019) and gradient clipping by
//! global norm.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};

use super::adamw_cpu::{self, MomentUpdate, WeightUpdate};
use crate::error::Result;

/// AdamW hyperparameters other than the learning rate, which the schedule supplies per step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Decay rate of the first moment.
    pub beta1: f64,
    /// Decay rate of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay, multiplied by the learning rate.
    pub weight_decay: f64,
}

/// Optimizer state: the moments of every parameter and the number of updates made.
pub struct AdamW {
    config: AdamWConfig,
    /// First and second moments by parameter name.
    pub moments: BTreeMap<String, (Tensor, Tensor)>,
    /// Updates made so far.
    pub step: u64,
}

impl AdamW {
    /// Creates an optimizer with zero moments for `params`.
    pub fn new(config: AdamWConfig, params: &[(String, Var)]) -> Result<AdamW> {
        let mut moments = BTreeMap::new();
        for (name, var) in params {
            moments.insert(name.clone(), (var.zeros_like()?, var.zeros_like()?));
        }
        Ok(AdamW { config, moments, step: 0 })
    }

    /// Applies one update with learning rate `lr` to the parameters that have a gradient, each
    /// gradient first multiplied by `grad_scale` (the factor of [`clip_scale`]).
    /// `decay(name, shape)` returns whether weight decay applies to a parameter.
    pub fn update(&mut self, params: &[(String, Var)], grads: &BTreeMap<String, Tensor>, grad_scale: f64, lr: f64, decay: impl Fn(&str, &[usize]) -> bool) -> Result<()> {
        self.step += 1;
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        let correction1 = 1.0 - beta1.powi(self.step as i32);
        let correction2 = 1.0 - beta2.powi(self.step as i32);
        for (name, var) in params {
            let Some(grad) = grads.get(name) else { continue };
            let (m, v) = self.moments.get_mut(name).expect("moments exist for every parameter");
            let decay_rate = if weight_decay > 0.0 && decay(name, var.dims()) { weight_decay } else { 0.0 };
            let value = var.as_detached_tensor();
            if adamw_cpu::applies(&[&value, grad, m, v]) && value.is_contiguous() && grad.is_contiguous() {
                m.inplace_op2(grad, &MomentUpdate { beta: beta1 as f32, grad_scale: grad_scale as f32, squared: false })?;
                v.inplace_op2(grad, &MomentUpdate { beta: beta2 as f32, grad_scale: grad_scale as f32, squared: true })?;
                let weights = WeightUpdate { lr: lr as f32, correction1: correction1 as f32, correction2: correction2 as f32, eps: eps as f32, weight_decay: decay_rate as f32 };
                var.as_tensor().inplace_op3(m, v, &weights)?;
                continue;
            }
            let grad = if grad_scale == 1.0 { grad.clone() } else { (grad * grad_scale)? };
            *m = ((&*m * beta1)? + (&grad * (1.0 - beta1))?)?;
            *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&*m / correction1)?;
            let v_hat = (&*v / correction2)?;
            let mut delta = (m_hat / (v_hat.sqrt()? + eps)?)?;
            if decay_rate > 0.0 {
                delta = (delta + (&value * decay_rate)?)?;
            }
            var.set(&(value - (delta * lr)?)?)?;
        }
        Ok(())
    }
}

/// Returns the global L2 norm of `grads`.
pub fn global_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64> {
    let mut total = 0f64;
    for grad in grads.values() {
        total += match adamw_cpu::sum_squares(grad) {
            Some(sum) => sum,
            None => grad.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?,
        };
    }
    Ok(total.sqrt())
}

/// Returns the global norm of `grads` and the factor that brings it to at most `max_norm`
/// (1 when it already is). `max_norm <= 0` disables clipping.
pub fn clip_scale(grads: &BTreeMap<String, Tensor>, max_norm: f64) -> Result<(f64, f64)> {
    let norm = global_norm(grads)?;
    let scale = if max_norm > 0.0 && norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
    Ok((norm, scale))
}
