//! Float kernels, AVX2 + FMA + F16C: dot products, `axpy` and SwiGLU.
//!
//! Each kernel runs eight lanes at a time and finishes the last `len % 8` elements with its
//! scalar twin in [`scalar`], so a tail is computed exactly as the scalar table computes it.

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

    /// The scalar twin of the dot product, used for the tail.
    fn scalar_dot(a: &[Self], b: &[f32]) -> f32;
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
}

/// Sums the eight lanes of `v`.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
unsafe fn sum_lanes(v: __m256) -> f32 {
    // SAFETY: the caller guarantees AVX.
    unsafe {
        let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_movehdup_ps(pair)))
    }
}

/// `Σ a[i] · b[i]` over `a.len()` elements, the generic body of `dot_f32` and `dot_f16`.
/// Length contract, as the scalar twin: `b` holds at least `a.len()` values, or the call
/// panics; further values are ignored.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline(always)]
unsafe fn dot<E: Element>(a: &[E], b: &[f32]) -> f32 {
    let n = a.len();
    let b = &b[..n];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees the CPU features. Every load reads eight elements at an
    // index `i` with `i + 8 <= n`, and both slices hold `n` elements.
    let sum = unsafe {
        // Four accumulators keep four FMAs in flight.
        let mut acc = [_mm256_setzero_ps(); 4];
        while i + 32 <= n {
            for (k, lane) in acc.iter_mut().enumerate() {
                let at = i + 8 * k;
                *lane = _mm256_fmadd_ps(E::load8(pa.add(at)), _mm256_loadu_ps(pb.add(at)), *lane);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(E::load8(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        sum_lanes(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
    };
    sum + E::scalar_dot(&a[i..], &b[i..])
}

/// `y += a · x` over the shorter of `x` and `y`, as the scalar twin.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (px, py) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees the CPU features. Every access covers eight elements at an
    // index `i` with `i + 8 <= n`, and both slices hold at least `n` elements.
    unsafe {
        let scale = _mm256_set1_ps(a);
        while i + 8 <= n {
            let sum = _mm256_fmadd_ps(scale, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
            _mm256_storeu_ps(py.add(i), sum);
            i += 8;
        }
    }
    scalar::axpy_f32(a, &x[i..n], &mut y[i..n]);
}

/// `gate = gate / (1 + e^-gate) · up` over the shorter of the two, as the scalar twin, with
/// [`exp`] in place of `libm::expf`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn silu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let (pg, pu) = (gate.as_mut_ptr(), up.as_ptr());
    let mut i = 0;
    // SAFETY: the caller guarantees the CPU features. Every access covers eight elements at an
    // index `i` with `i + 8 <= n`, and both slices hold at least `n` elements.
    unsafe {
        let one = _mm256_set1_ps(1.0);
        let sign = _mm256_set1_ps(-0.0);
        while i + 8 <= n {
            let g = _mm256_loadu_ps(pg.add(i));
            let e = exp(_mm256_xor_ps(g, sign));
            let out = _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(pu.add(i)));
            _mm256_storeu_ps(pg.add(i), out);
            i += 8;
        }
    }
    scalar::silu_mul(&mut gate[i..n], &up[i..n]);
}

/// `e^x` in eight lanes, within a few ulp of `libm::expf` for `x` in `[-87.3, 88.7]` (where
/// f32 results are normal); `kernels_vs_scalar` checks `silu_mul` against the scalar one
/// through this function. Inputs are first clamped to `[-88, 89]`, so results are `+inf`
/// above the f32 range and `e^-88` (not a smaller value) below -88. The SwiGLU caller adds
/// 1 to the result, which makes anything below 2^-24 vanish, so the clamp does not change it.
/// NaN stays NaN.
///
/// Method: `x = n·ln2 + r` with `n = round(x / ln2)` and `|r| <= ln2 / 2`; `e^r` from its
/// Taylor series to degree 7 (truncation error below 1e-8 relative); the result is scaled
/// by `2^n` in two steps of at most `2^64`, so `n` from -127 to 128 stays in the exponent
/// range.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn exp(x: __m256) -> __m256 {
    // ln 2 split in a high part with few bits (so that `n · LN2_HIGH` is exact) and the rest.
    const LN2_HIGH: f32 = 0.693_359_375;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    // 1/k! for k = 7 down to 2.
    const TAYLOR: [f32; 6] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5];
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe {
        // With x NaN, `min` and `max` return their second operand, x, so NaN passes through.
        let x = _mm256_max_ps(_mm256_set1_ps(-88.0), _mm256_min_ps(_mm256_set1_ps(89.0), x));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(x, _mm256_set1_ps(core::f32::consts::LOG2_E)));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HIGH), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LOW), r);

        let mut p = _mm256_set1_ps(TAYLOR[0]);
        for c in &TAYLOR[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*c));
        }
        let one = _mm256_set1_ps(1.0);
        p = _mm256_fmadd_ps(p, r, one);
        p = _mm256_fmadd_ps(p, r, one);

        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let rest = _mm256_sub_epi32(n, half);
        _mm256_mul_ps(_mm256_mul_ps(p, pow2(half)), pow2(rest))
    }
}

/// `2^k` for integer `k` in `-126..=127`: the f32 with biased exponent `k + 127` and a zero
/// mantissa.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn pow2(k: __m256i) -> __m256 {
    // SAFETY: the caller guarantees AVX2.
    unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127)))) }
}

/// f32 · f32 (length contract of `dot`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: this function's target features are the ones `dot` requires.
    unsafe { dot(a, b) }
}

/// f16 · f32 (length contract of `dot`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: this function's target features are the ones `dot` requires.
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

/// SwiGLU in place.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
    // SAFETY: this function's target features include the ones `silu` requires.
    unsafe { silu(gate, up) }
}
