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
