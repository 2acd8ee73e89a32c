//! Scalar f32 reference operations of the forward pass.
//!
//! Each function states its shapes. These are the reference that faster kernels are tested
//! against, and the code path on targets without SIMD.

use crate::tensor::TensorData;

/// RMSNorm of each row of `x` (`rows` × `dim`) into `out`: `out = x / sqrt(mean(x²) + eps) * weight`.
pub fn rms_norm(out: &mut [f32], x: &[f32], weight: &TensorData<'_>, dim: usize, eps: f32) {
    for (out_row, x_row) in out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
        let sum_squares: f32 = x_row.iter().map(|v| v * v).sum();
        let scale = 1.0 / libm::sqrtf(sum_squares / dim as f32 + eps);
        for (i, (o, v)) in out_row.iter_mut().zip(x_row).enumerate() {
            *o = (v * scale) * weight.get(i);
        }
    }
}

/// RMSNorm of each row in place, as [`rms_norm`].
pub fn rms_norm_in_place(x: &mut [f32], weight: &TensorData<'_>, dim: usize, eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let sum_squares: f32 = row.iter().map(|v| v * v).sum();
        let scale = 1.0 / libm::sqrtf(sum_squares / dim as f32 + eps);
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v * scale) * weight.get(i);
        }
    }
}

/// Adds `bias` (length `dim`) to each row of `x`.
pub fn add_bias(x: &mut [f32], bias: &TensorData<'_>, dim: usize) {
    for row in x.chunks_exact_mut(dim) {
        for (i, v) in row.iter_mut().enumerate() {
            *v += bias.get(i);
        }
    }
}
