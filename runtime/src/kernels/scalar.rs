//! Scalar kernels: the reference every SIMD kernel is tested against, and the kernels of
//! targets without SIMD.
//!
//! Inside a 32-weight sub-block the products and sums are exact integers; the scaling by the
//! weight and activation scales and the sum across sub-blocks are f32, in block order.

use half::f16;

use crate::quant::{f16_to_f32, BlockQ16Act, BlockQ4_0G, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};

/// Integer dot product of 32 int8 weights with 32 int16 activations; at most
/// 32 · 128 · 32768 = 2^27 in magnitude, so i32 cannot overflow.
#[inline(always)]
fn dot_i8_i16(w: &[i8; QK], x: &[i16; QK]) -> i32 {
    w.iter().zip(x).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum()
}

/// Integer dot product of 32 packed unsigned nibbles (0..15) with 32 int8 activations.
#[inline(always)]
fn dot_u4(qs: &[u8; QK / 2], x: &[i8; QK]) -> i32 {
    let mut sum = 0;
    for j in 0..QK / 2 {
        sum += i32::from(qs[j] & 0x0F) * i32::from(x[j]);
        sum += i32::from(qs[j] >> 4) * i32::from(x[j + QK / 2]);
    }
    sum
}

/// Q8_0 weights · int16 activations, one row.
pub fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in w.iter().zip(x) {
        sum += f16_to_f32(wb.d) * xb.d * dot_i8_i16(&wb.qs, &xb.qs) as f32;
    }
    sum
}

/// Q4_0 (groups of `32 * S`) weights · int8 activations, one row: the `-8` offset is applied
/// through the activation sums.
pub fn dot_q4_0<const S: usize>(w: &[BlockQ4_0G<S>], x: &[BlockQ8Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xs) in w.iter().zip(x.chunks(S)) {
        let d = f16_to_f32(wb.d);
        for (qs, xb) in wb.qs.iter().zip(xs) {
            sum += d * xb.d * (dot_u4(qs, &xb.qs) - 8 * xb.sum) as f32;
        }
    }
    sum
}

/// Q4_1 weights · int8 activations, one row: `Σ d·dx·Σq·qx + m·dx·Σqx` per block.
pub fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in w.iter().zip(x) {
        let d = f16_to_f32(wb.d);
        let m = f16_to_f32(wb.m);
        sum += d * xb.d * dot_u4(&wb.qs, &xb.qs) as f32 + m * xb.d * xb.sum as f32;
    }
    sum
}

/// Four interleaved rows · int8 activations, from a one-row kernel: `w` holds the blocks of
/// rows 0-3 alternating (block 0 of rows 0-3, block 1 of rows 0-3, ...).
#[inline(always)]
fn dot_r4<B: Copy, A>(w: &[B], x: &[A], blocks_per_subblocks: usize, dot: impl Fn(&[B], &[A]) -> f32) -> [f32; 4] {
    let mut out = [0.0f32; 4];
    for (b, group) in w.chunks_exact(4).enumerate() {
        let xs = &x[b * blocks_per_subblocks..(b + 1) * blocks_per_subblocks];
        for (r, block) in group.iter().enumerate() {
            out[r] += dot(core::slice::from_ref(block), xs);
        }
    }
    out
}

/// Q8_0, four interleaved rows.
pub fn dot_q8_0_r4(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> [f32; 4] {
    dot_r4(w, x, 1, dot_q8_0)
}

/// Q4_0 (groups of `32 * S`), four interleaved rows.
pub fn dot_q4_0_r4<const S: usize>(w: &[BlockQ4_0G<S>], x: &[BlockQ8Act]) -> [f32; 4] {
    dot_r4(w, x, S, dot_q4_0::<S>)
}

/// Q4_1, four interleaved rows.
pub fn dot_q4_1_r4(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> [f32; 4] {
    dot_r4(w, x, 1, dot_q4_1)
}

/// Q8_0, four interleaved rows · four activation rows, `[token][row]`.
pub fn dot_q8_0_r4x4(w: &[BlockQ8_0], x: [&[BlockQ16Act]; 4]) -> [[f32; 4]; 4] {
    x.map(|x| dot_q8_0_r4(w, x))
}

/// Q4_0 (groups of `32 * S`), four interleaved rows · four activation rows, `[token][row]`.
pub fn dot_q4_0_r4x4<const S: usize>(w: &[BlockQ4_0G<S>], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    x.map(|x| dot_q4_0_r4::<S>(w, x))
}

/// Q4_1, four interleaved rows · four activation rows, `[token][row]`.
pub fn dot_q4_1_r4x4(w: &[BlockQ4_1], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    x.map(|x| dot_q4_1_r4(w, x))
}

/// f32 dot product with eight partial sums.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for lane in 0..8 {
            partial[lane] += a[c * 8 + lane] * b[c * 8 + lane];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..a.len() {
        tail += a[i] * b[i];
    }
    partial.iter().sum::<f32>() + tail
}

/// f16 · f32 dot product with eight partial sums.
pub fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for lane in 0..8 {
            partial[lane] += a[c * 8 + lane].to_f32() * b[c * 8 + lane];
        }
    }
    let mut tail = 0.0;
    for i in chunks * 8..a.len() {
        tail += a[i].to_f32() * b[i];
    }
    partial.iter().sum::<f32>() + tail
}

/// `y += a * x`.
pub fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `y += a * x` with `x` in f16: each value is widened to f32 exactly, then as `axpy_f32`.
pub fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x.to_f32();
    }
}

/// Q8_0 values (a row of a Q8_0 KV cache) · f32: each product `(q_i · x_i) · d` goes to
/// partial sum `i mod 8`, and the eight partial sums are added in order at the end. `x` must
/// contain at least `32 · w.len()` values, or the call panics.
pub fn dot_q8_0_f32(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let mut partial = [0.0f32; 8];
    for (b, block) in w.iter().enumerate() {
        let d = f16_to_f32(block.d);
        for (i, (&q, &v)) in block.qs.iter().zip(&x[b * QK..(b + 1) * QK]).enumerate() {
            partial[i % 8] += (f32::from(q) * v) * d;
        }
    }
    partial.iter().sum()
}

/// `y += a · x` with `x` in Q8_0 blocks: `y_i += (a · d) · q_i`. `y` must contain at least
/// `32 · x.len()` values, or the call panics.
pub fn axpy_q8_0(a: f32, x: &[BlockQ8_0], y: &mut [f32]) {
    for (b, block) in x.iter().enumerate() {
        let scale = a * f16_to_f32(block.d);
        for (y, &q) in y[b * QK..(b + 1) * QK].iter_mut().zip(&block.qs) {
            *y += scale * f32::from(q);
        }
    }
}

/// Attention scores of one query head over cached f16 keys: `out[p] = key_p · q` for every
/// `p` below `out.len()`, where `key_p = keys[p · stride..p · stride + q.len()]`.
pub fn scores_f16(keys: &[f16], stride: usize, q: &[f32], out: &mut [f32]) {
    for (p, score) in out.iter_mut().enumerate() {
        *score = dot_f16(&keys[p * stride..p * stride + q.len()], q);
    }
}

/// Computes the attention output of one head over cached f16 values: `out = Σ_p weights[p] · value_p`,
/// where `value_p = values[p · stride..p · stride + out.len()]`, added in position order.
pub fn mix_f16(values: &[f16], stride: usize, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let dim = out.len();
    for (p, &weight) in weights.iter().enumerate() {
        axpy_f16(weight, &values[p * stride..p * stride + dim], out);
    }
}

/// [`scores_f16`] over Q8_0 keys: `stride` and the head are counted in blocks of 32, so a key
/// is `keys[p · stride..p · stride + q.len() / 32]`.
pub fn scores_q8_0(keys: &[BlockQ8_0], stride: usize, q: &[f32], out: &mut [f32]) {
    let blocks = q.len() / QK;
    for (p, score) in out.iter_mut().enumerate() {
        *score = dot_q8_0_f32(&keys[p * stride..p * stride + blocks], q);
    }
}

/// [`mix_f16`] over Q8_0 values, with `stride` and the head counted in blocks of 32.
pub fn mix_q8_0(values: &[BlockQ8_0], stride: usize, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let blocks = out.len() / QK;
    for (p, &weight) in weights.iter().enumerate() {
        axpy_q8_0(weight, &values[p * stride..p * stride + blocks], out);
    }
}

/// Softmax in place, shifted by the maximum: `x_i = e^(x_i - max) / Σ e^(x_j - max)`, with
/// `e^x` from [`exp`] and the sum taken in eight partial sums (element `i` into sum `i mod 8`)
/// added in order, so that a vector kernel can repeat it exactly. The inputs are finite.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut partial = [0.0f32; 8];
    for (i, v) in x.iter_mut().enumerate() {
        *v = exp(*v - max);
        partial[i % 8] += *v;
    }
    let sum: f32 = partial.iter().sum();
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// SwiGLU in place: `gate = gate / (1 + e^-gate) * up`, with `e^x` from [`exp`].
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + exp(-*g)) * u;
    }
}

/// `log2(e)`, the factor from `x` to the power of two `e^x` equals.
pub const EXP_LOG2_E: f32 = core::f32::consts::LOG2_E;
/// `ln 2` split in two parts: `EXP_LN2_HI` has 9 significant bits, so `n · EXP_LN2_HI` is
/// exact for every `n` that [`exp`] meets.
pub const EXP_LN2_HI: f32 = 0.693_359_4;
/// The rest of `ln 2` after [`EXP_LN2_HI`].
pub const EXP_LN2_LO: f32 = -2.121_944_4e-4;
/// Taylor coefficients `1/k!` of `e^r` for `k = 7` down to 2, for Horner's rule.
pub const EXP_TAYLOR: [f32; 6] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5];
/// Inputs are clamped to `EXP_MIN..=EXP_MAX`: below, `e^x` is zero in f32; above, infinity.
pub const EXP_MIN: f32 = -104.0;
/// See [`EXP_MIN`].
pub const EXP_MAX: f32 = 89.0;

/// Computes `e^x` with operations that a SIMD lane repeats exactly, so that the vector
/// kernels built on it (`silu_mul`) return this function's result bit for bit.
///
/// Method: `x = n·ln 2 + r` with `n = round(x·log2 e)` (ties to even) and `|r| <= ln(2)/2`;
/// `e^r` by its Taylor polynomial of degree 7 (truncation below 1e-8 relative), evaluated by
/// Horner's rule with separate multiplies and adds; then scaling by `2^n` in two factors,
/// each a normal f32 for every `n` in -150..=128. Relative error against the true value is
/// about 2e-7 over the normal range; results below the smallest normal f32 lose precision.
/// NaN stays NaN, `x` above 89 gives infinity and `x` below -104 gives zero.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let n = libm::rintf(x * EXP_LOG2_E);
    let r = (x - n * EXP_LN2_HI) - n * EXP_LN2_LO;
    let mut p = EXP_TAYLOR[0];
    for c in &EXP_TAYLOR[1..] {
        p = p * r + c;
    }
    p = p * r + 1.0;
    p = p * r + 1.0;
    let n = n as i32;
    let half = n >> 1;
    let rest = n - half;
    let scale_half = f32::from_bits(((half + 127) << 23) as u32);
    let scale_rest = f32::from_bits(((rest + 127) << 23) as u32);
    (p * scale_half) * scale_rest
}
