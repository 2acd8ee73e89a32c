//! Scalar f32 reference operations of the forward pass.
//!
//! Each function states its shapes. These are the reference that faster kernels are tested
//! against, and the code path on targets without SIMD.

use crate::tensor::{Matrix, TensorData};

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

/// Dot product with eight partial sums, which keeps rounding error low and vectorizes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for lane in 0..8 {
            partial[lane] += a[c * 8 + lane] * b[c * 8 + lane];
        }
    }
    let mut sum = 0.0;
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    partial.iter().sum::<f32>() + sum
}

/// Matrix product `out = x · wᵀ`: `x` is `n` × `w.cols`, `out` is `n` × `w.rows`.
///
/// `row_buffer` holds `w.cols` elements; a weight row is converted to f32 into it once and
/// reused for all `n` inputs.
pub fn matmul(out: &mut [f32], x: &[f32], w: &Matrix<'_>, n: usize, row_buffer: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    for r in 0..rows {
        let weights: &[f32] = match w.data {
            TensorData::F32(data) => &data[r * cols..(r + 1) * cols],
            _ => {
                w.row_to_f32(r, row_buffer);
                &row_buffer[..cols]
            }
        };
        for t in 0..n {
            out[t * rows + r] = dot(&x[t * cols..(t + 1) * cols], weights);
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

/// SwiGLU activation in place: `gate = silu(gate) * up`, with `silu(x) = x / (1 + e^-x)`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + libm::expf(-*g)) * u;
    }
}

/// Softmax in place, shifted by the maximum for stability.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}
