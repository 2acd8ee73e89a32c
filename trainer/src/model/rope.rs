//! Rotary position embedding in the Hugging Face half layout: dimension `i` of a head is
//! rotated together with dimension `i + head_dim / 2`.

use candle_core::{DType, Device, Tensor, D};
use tinyllm::format::metadata::Rope;

/// The inverse frequencies with the model's scaling: the runtime's own function, so that the
/// trainer and the runtime rotate by the same f32 angles.
pub use tinyllm::forward::rope::inverse_frequencies;

/// The cosines and sines of every token's rotation angles, each `[batch, 1, seq, head_dim]`
/// with the angle list repeated for both halves of the head.
pub struct RopeAngles {
    /// cos(position × inv_freq).
    pub cos: Tensor,
    /// sin(position × inv_freq).
    pub sin: Tensor,
}

impl RopeAngles {
    /// Computes the angles of `positions` (`batch × seq` values, row-major) for one head size.
    pub fn new(rope: &Rope, head_dim: usize, positions: &[u32], batch: usize, seq: usize, dtype: DType, device: &Device) -> candle_core::Result<RopeAngles> {
        let inv_freq = inverse_frequencies(rope, head_dim);
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(positions.len() * head_dim);
        let mut sin = Vec::with_capacity(positions.len() * head_dim);
        for &position in positions {
            let row_start = cos.len();
            for &freq in &inv_freq {
                // The product is rounded to f32 first, as in transformers.
                let angle = position as f32 * freq;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
            cos.extend_from_within(row_start..row_start + half);
            sin.extend_from_within(row_start..row_start + half);
        }
        let shape = (batch, 1, seq, head_dim);
        Ok(RopeAngles {
            cos: Tensor::from_vec(cos, shape, device)?.to_dtype(dtype)?,
            sin: Tensor::from_vec(sin, shape, device)?.to_dtype(dtype)?,
        })
    }

    /// Rotates `x` (`[batch, heads, seq, head_dim]`).
    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let head_dim = x.dim(D::Minus1)?;
        let half = head_dim / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&self.cos)?.add(&rotated.broadcast_mul(&self.sin)?)
    }
}
