//! Float kernels, AVX2 + F16C: dot products and `axpy`.
//!
//! Each kernel runs eight lanes at a time with the operations of its scalar twin in
//! [`scalar`], in the same order, and finishes the last `len % 8` elements with the scalar
//! twin itself. Results are therefore bit-identical to the scalar table, which matters more
//! than FMA (see `quant_dot`). The eight partial sums of the scalar dot products are the
//! eight lanes of a vector here.

use core::arch::x86_64::*;

use half::f16;

use crate::kernels::scalar;
use crate::quant::{f16_to_f32, BlockQ8_0, QK};

/// An element type the dot product reads as f32.
trait Element: Copy {
    /// Loads eight elements starting at `ptr` as f32.
    ///
    /// # Safety
    /// The CPU must support AVX and F16C, and `ptr` must be valid for reading eight elements.
    unsafe fn load8(ptr: *const Self) -> __m256;

    /// Computes the dot product with the scalar twin, for the tail.
    fn scalar_dot(a: &[Self], b: &[f32]) -> f32;

    /// Computes `y += a · x` with the scalar twin, for the tail.
    fn scalar_axpy(a: f32, x: &[Self], y: &mut [f32]);
}

impl Element for f32 {
    #[inline(always)]
    unsafe fn load8(ptr: *const f32) -> __m256 {
        // SAFETY: the caller guarantees AVX and eight readable elements at `ptr`.
        unsafe { _mm256_loadu_ps(ptr) }
    }

    fn scalar_dot(a: &[f32], b: &[f32]) -> f32 {
        scalar::dot_f32(a, b)
    }

    fn scalar_axpy(a: f32, x: &[f32], y: &mut [f32]) {
        scalar::axpy_f32(a, x, y)
    }
}

impl Element for f16 {
    #[inline(always)]
    unsafe fn load8(ptr: *const f16) -> __m256 {
        // SAFETY: the caller guarantees F16C and eight readable elements at `ptr`; `f16` is a
        // transparent `u16`, so eight of them are the 16 bytes the load reads.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(ptr as *const __m128i)) }
    }

    fn scalar_dot(a: &[f16], b: &[f32]) -> f32 {
        scalar::dot_f16(a, b)
    }

    fn scalar_axpy(a: f32, x: &[f16], y: &mut [f32]) {
        scalar::axpy_f16(a, x, y)
    }
}

/// `Σ a[i] · b[i]` over `a.len()` elements, the generic body of `dot_f32` and `dot_f16`.
/// Length contract, as the scalar twin: `b` must contain at least `a.len()` values, or the
/// call panics. Further values are ignored.
///
/// # Safety
/// The CPU must support AVX and F16C.
#[inline(always)]
unsafe fn dot<E: Element>(a: &[E], b: &[f32]) -> f32 {
    let n = a.len();
    let b = &b[..n];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    let mut partial = [0.0f32; 8];
    // SAFETY: the caller guarantees the CPU features. Every load reads eight elements at an
    // index `i` with `i + 8 <= n`, both slices hold `n` elements, and the store writes the
    // eight floats of `partial`.
    unsafe {
        let mut acc = _mm256_setzero_ps();
        while i + 8 <= n {
            acc = _mm256_add_ps(acc, _mm256_mul_ps(E::load8(pa.add(i)), _mm256_loadu_ps(pb.add(i))));
            i += 8;
        }
        _mm256_storeu_ps(partial.as_mut_ptr(), acc);
    }
    let sum: f32 = partial.iter().sum();
    if i == n {
        // The scalar twin adds the empty tail's sum, +0.0; so does this, without the call.
        return sum + 0.0;
    }
    sum + E::scalar_dot(&a[i..], &b[i..])
}

/// `y += a · x` over the shorter of `x` and `y`, as the scalar twin; the generic body of
/// `axpy_f32` and `axpy_f16`.
///
/// # Safety
/// The CPU must support AVX and F16C.
#[inline(always)]
unsafe fn axpy<E: Element>(a: f32, x: &[E], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (px, py) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees the CPU features. Every access covers eight elements at an
    // index `i` with `i + 8 <= n`, and both slices hold at least `n` elements.
    unsafe {
        let scale = _mm256_set1_ps(a);
        while i + 8 <= n {
            let sum = _mm256_add_ps(_mm256_loadu_ps(py.add(i)), _mm256_mul_ps(scale, E::load8(px.add(i))));
            _mm256_storeu_ps(py.add(i), sum);
            i += 8;
        }
    }
    E::scalar_axpy(a, &x[i..n], &mut y[i..n]);
}

/// f32 · f32 (length contract of `dot`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: this function's target features include the ones `dot` requires.
    unsafe { dot(a, b) }
}

/// f16 · f32 (length contract of `dot`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: this function's target features include the ones `dot` requires.
    unsafe { dot(a, b) }
}

/// `y += a · x`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
    // SAFETY: this function's target features include the ones `axpy` requires.
    unsafe { axpy(a, x, y) }
}

/// `y += a · x` with `x` in f16.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) {
    // SAFETY: this function's target features include the ones `axpy` requires.
    unsafe { axpy(a, x, y) }
}

/// Computes `e^x` per lane with the operations of [`scalar::exp`] in its order, so each lane
/// equals the scalar result bit for bit (NaN lanes stay NaN).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn exp(x: __m256) -> __m256 {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        // With a NaN in either operand, `max` and `min` return the second one: NaN lanes pass.
        let x = _mm256_min_ps(_mm256_set1_ps(scalar::EXP_MAX), _mm256_max_ps(_mm256_set1_ps(scalar::EXP_MIN), x));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(x, _mm256_set1_ps(scalar::EXP_LOG2_E)));
        let r = _mm256_sub_ps(
            _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(scalar::EXP_LN2_HI))),
            _mm256_mul_ps(n, _mm256_set1_ps(scalar::EXP_LN2_LO)),
        );
        let mut p = _mm256_set1_ps(scalar::EXP_TAYLOR[0]);
        for &c in &scalar::EXP_TAYLOR[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(c));
        }
        let one = _mm256_set1_ps(1.0);
        p = _mm256_add_ps(_mm256_mul_ps(p, r), one);
        p = _mm256_add_ps(_mm256_mul_ps(p, r), one);
        // 2^n = 2^(n >> 1) · 2^(n - (n >> 1)), each factor built from its exponent bits.
        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let rest = _mm256_sub_epi32(n, half);
        let bias = _mm256_set1_epi32(127);
        let scale_half = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(half, bias)));
        let scale_rest = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(rest, bias)));
        _mm256_mul_ps(_mm256_mul_ps(p, scale_half), scale_rest)
    }
}

/// SwiGLU in place over the common length, `gate = gate / (1 + e^-gate) · up`, bit-identical
/// to the scalar twin.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let main = n - n % 8;
    // SAFETY: the target features are enabled. The loads and stores touch elements
    // `i..i + 8` with `i + 8 <= main <= n` of `gate` and `up`; `gate` is borrowed mutably, so
    // nothing else reads it.
    unsafe {
        let (one, sign) = (_mm256_set1_ps(1.0), _mm256_set1_ps(-0.0));
        for i in (0..main).step_by(8) {
            let (pg, pu) = (gate.as_mut_ptr().add(i), up.as_ptr().add(i));
            let g = _mm256_loadu_ps(pg);
            let silu = _mm256_div_ps(g, _mm256_add_ps(one, exp(_mm256_xor_ps(g, sign))));
            _mm256_storeu_ps(pg, _mm256_mul_ps(silu, _mm256_loadu_ps(pu)));
        }
    }
    scalar::silu_mul(&mut gate[main..n], &up[main..n]);
}

/// Loads eight int8 values as f32.
///
/// # Safety
/// The CPU must support AVX2, and `ptr` must be valid for reading eight bytes.
#[inline(always)]
unsafe fn load8_i8(ptr: *const i8) -> __m256 {
    // SAFETY: the caller guarantees AVX2 and eight readable bytes.
    unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(ptr as *const __m128i))) }
}

/// Q8_0 · f32 with the scalar twin's partial sums and order, bit-identical to it (length
/// contract of the scalar twin).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0_f32(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let x = &x[..w.len() * QK];
    let mut partial = [0.0f32; 8];
    // SAFETY: the target features are enabled. Block `b` reads its own 32 bytes and values
    // `32b..32b + 32` of `x`, which holds `32 · w.len()`; the store writes the eight floats of
    // `partial`.
    unsafe {
        let mut acc = _mm256_setzero_ps();
        for (b, block) in w.iter().enumerate() {
            let d = _mm256_set1_ps(f16_to_f32(block.d));
            for c in 0..QK / 8 {
                let products = _mm256_mul_ps(load8_i8(block.qs.as_ptr().add(8 * c)), _mm256_loadu_ps(x.as_ptr().add(b * QK + 8 * c)));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(products, d));
            }
        }
        _mm256_storeu_ps(partial.as_mut_ptr(), acc);
    }
    partial.iter().sum()
}

/// `y += a · x` with `x` in Q8_0 blocks, bit-identical to the scalar twin (length contract of
/// the scalar twin).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy_q8_0(a: f32, x: &[BlockQ8_0], y: &mut [f32]) {
    let y = &mut y[..x.len() * QK];
    // SAFETY: the target features are enabled. Block `b` reads its own 32 bytes and reads and
    // writes values `32b..32b + 32` of `y`, which holds `32 · x.len()` and is borrowed mutably.
    unsafe {
        for (b, block) in x.iter().enumerate() {
            let scale = _mm256_set1_ps(a * f16_to_f32(block.d));
            for c in 0..QK / 8 {
                let py = y.as_mut_ptr().add(b * QK + 8 * c);
                let sum = _mm256_add_ps(_mm256_loadu_ps(py), _mm256_mul_ps(scale, load8_i8(block.qs.as_ptr().add(8 * c))));
                _mm256_storeu_ps(py, sum);
            }
        }
    }
}

/// Attention scores of one head over f16 keys: the inlined `dot` per position, so each score
/// equals `dot_f16`'s bit for bit (contract of `scalar::scores_f16`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scores_f16(keys: &[f16], stride: usize, q: &[f32], out: &mut [f32]) {
    for (p, score) in out.iter_mut().enumerate() {
        // SAFETY: this function's target features include the ones `dot` requires.
        *score = unsafe { dot(&keys[p * stride..p * stride + q.len()], q) };
    }
}

/// Attention output of one head over f16 values: the inlined `axpy` per position, in position
/// order (contract of `scalar::mix_f16`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn mix_f16(values: &[f16], stride: usize, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let dim = out.len();
    for (p, &weight) in weights.iter().enumerate() {
        // SAFETY: this function's target features include the ones `axpy` requires.
        unsafe { axpy(weight, &values[p * stride..p * stride + dim], out) };
    }
}

/// Attention scores of one head over Q8_0 keys (contract of `scalar::scores_q8_0`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scores_q8_0(keys: &[BlockQ8_0], stride: usize, q: &[f32], out: &mut [f32]) {
    let blocks = q.len() / QK;
    for (p, score) in out.iter_mut().enumerate() {
        // SAFETY: the target features are enabled, the ones `dot_q8_0_f32` requires.
        *score = unsafe { dot_q8_0_f32(&keys[p * stride..p * stride + blocks], q) };
    }
}

/// Attention output of one head over Q8_0 values (contract of `scalar::mix_q8_0`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn mix_q8_0(values: &[BlockQ8_0], stride: usize, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let blocks = out.len() / QK;
    for (p, &weight) in weights.iter().enumerate() {
        // SAFETY: the target features are enabled, the ones `axpy_q8_0` requires.
        unsafe { axpy_q8_0(weight, &values[p * stride..p * stride + blocks], out) };
    }
}

/// Softmax in place with the scalar twin's operations and partial sums, bit-identical to it
/// (finite inputs, as the scalar twin requires).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn softmax(x: &mut [f32]) {
    let n = x.len();
    let main = n - n % 8;
    let px = x.as_mut_ptr();
    let mut lanes = [0.0f32; 8];
    // SAFETY: the target features are enabled. Every vector access covers elements `i..i + 8`
    // with `i + 8 <= main <= n`; `x` is borrowed mutably; the stores to `lanes` write its eight
    // floats.
    let max = unsafe {
        let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
        for i in (0..main).step_by(8) {
            max = _mm256_max_ps(max, _mm256_loadu_ps(px.add(i)));
        }
        _mm256_storeu_ps(lanes.as_mut_ptr(), max);
        // The maximum is exact in any order.
        lanes.iter().chain(&x[main..]).copied().fold(f32::NEG_INFINITY, f32::max)
    };

    let mut partial = [0.0f32; 8];
    // SAFETY: as above.
    unsafe {
        let (shift, mut sums) = (_mm256_set1_ps(max), _mm256_setzero_ps());
        for i in (0..main).step_by(8) {
            let e = exp(_mm256_sub_ps(_mm256_loadu_ps(px.add(i)), shift));
            _mm256_storeu_ps(px.add(i), e);
            sums = _mm256_add_ps(sums, e);
        }
        _mm256_storeu_ps(partial.as_mut_ptr(), sums);
    }
    for (i, v) in x.iter_mut().enumerate().skip(main) {
        *v = scalar::exp(*v - max);
        partial[i % 8] += *v;
    }
    let sum: f32 = partial.iter().sum();

    // SAFETY: as above.
    unsafe {
        let total = _mm256_set1_ps(sum);
        for i in (0..main).step_by(8) {
            _mm256_storeu_ps(px.add(i), _mm256_div_ps(_mm256_loadu_ps(px.add(i)), total));
        }
    }
    for v in &mut x[main..] {
        *v /= sum;
    }
}
