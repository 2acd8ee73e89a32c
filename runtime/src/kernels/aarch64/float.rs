//! Float kernels, NEON: the same body in every aarch64 table.
//!
//! Each kernel runs its vector loop over the longest prefix that fills whole iterations and
//! hands the rest to its scalar twin. `dot_f32` and `dot_f16` keep 16 partial sums and use
//! fused multiply-adds, so they differ from the scalar kernels in the rounding and order of the
//! f32 sums. `axpy_f32` multiplies and adds separately, like its scalar twin, so it rounds the
//! same way. `silu_mul` computes `e^x` with the polynomial of `scalar::exp`, but with fused multiply-adds.

use core::arch::aarch64::*;
use core::arch::asm;

use half::f16;

use crate::kernels::scalar;

/// Converts eight f16 values, given as bits, to two vectors of four f32 (`fcvtl`, `fcvtl2`).
/// The conversion is exact, subnormals and infinities included.
///
/// Written with `asm!` because the intrinsic `vcvt_f32_f16` and the `float16x4_t` type are stable only
/// since Rust 1.94, above the workspace's `rust-version` of 1.89. The instructions are part of
/// base NEON.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
unsafe fn f16x8_to_f32(bits: uint16x8_t) -> [float32x4_t; 2] {
    let low: float32x4_t;
    let high: float32x4_t;
    // SAFETY: the caller guarantees NEON. The instructions read `bits` and write the two
    // outputs, all registers. They touch no memory, stack or flags.
    unsafe {
        asm!(
            "fcvtl {low:v}.4s, {bits:v}.4h",
            "fcvtl2 {high:v}.4s, {bits:v}.8h",
            bits = in(vreg) bits,
            low = out(vreg) low,
            high = out(vreg) high,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    [low, high]
}

/// Converts four f16 values, given as bits, to f32 (`fcvtl`), exactly.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn f16x4_to_f32(bits: [u16; 4]) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: the caller guarantees NEON. The load reads the four values of `bits`, and
    // `fcvtl` reads and writes registers only.
    unsafe {
        let bits = vld1_u16(bits.as_ptr());
        asm!(
            "fcvtl {out:v}.4s, {bits:v}.4h",
            bits = in(vreg) bits,
            out = out(vreg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

/// f32 dot product.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    // The scalar twin reads `b[i]` for every index of `a`, so `b` must be as long.
    let b = &b[..a.len()];
    let main = a.len() - a.len() % 16;
    // SAFETY: the caller guarantees NEON. Chunk `c` starts at `16c` and the loads read
    // elements `16c..16c + 16` of `a` and `b`, below `main`, which is within both slices.
    let sum = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        for c in 0..main / 16 {
            let (pa, pb) = (a.as_ptr().add(16 * c), b.as_ptr().add(16 * c));
            for i in 0..4 {
                acc[i] = vfmaq_f32(acc[i], vld1q_f32(pa.add(4 * i)), vld1q_f32(pb.add(4 * i)));
            }
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])))
    };
    sum + scalar::dot_f32(&a[main..], &b[main..])
}

/// f16 · f32 dot product.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    let b = &b[..a.len()];
    let main = a.len() - a.len() % 16;
    // SAFETY: the caller guarantees NEON. `f16` is a `repr(transparent)` wrapper of `u16`,
    // so `a` can be read as `u16`. The loads read elements `16c..16c + 16` of `a` and `b`,
    // below `main`, which is within both slices.
    let sum = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        for c in 0..main / 16 {
            let pa = a.as_ptr().add(16 * c) as *const u16;
            let pb = b.as_ptr().add(16 * c);
            let [a0, a1] = f16x8_to_f32(vld1q_u16(pa));
            let [a2, a3] = f16x8_to_f32(vld1q_u16(pa.add(8)));
            acc[0] = vfmaq_f32(acc[0], a0, vld1q_f32(pb));
            acc[1] = vfmaq_f32(acc[1], a1, vld1q_f32(pb.add(4)));
            acc[2] = vfmaq_f32(acc[2], a2, vld1q_f32(pb.add(8)));
            acc[3] = vfmaq_f32(acc[3], a3, vld1q_f32(pb.add(12)));
        }
        vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])))
    };
    sum + scalar::dot_f16(&a[main..], &b[main..])
}

/// `y += a * x` over the common length of `x` and `y`, multiply then add as in the scalar twin.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let main = n - n % 8;
    // SAFETY: the caller guarantees NEON. The loads and stores touch elements `8c..8c + 8` of
    // `x` and `y`, below `main <= n`. `y` is borrowed mutably, so nothing else reads it.
    unsafe {
        let scale = vdupq_n_f32(a);
        for c in 0..main / 8 {
            let (px, py) = (x.as_ptr().add(8 * c), y.as_mut_ptr().add(8 * c));
            let y0 = vaddq_f32(vld1q_f32(py), vmulq_f32(scale, vld1q_f32(px)));
            let y1 = vaddq_f32(vld1q_f32(py.add(4)), vmulq_f32(scale, vld1q_f32(px.add(4))));
            vst1q_f32(py, y0);
            vst1q_f32(py.add(4), y1);
        }
    }
    scalar::axpy_f32(a, &x[main..n], &mut y[main..n]);
}

/// `y += a * x` with `x` in f16, each value widened to f32 exactly (`fcvtl`), then multiply
/// and add as in the scalar twin.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let main = n - n % 8;
    // SAFETY: the caller guarantees NEON. `f16` is a `repr(transparent)` wrapper of `u16`.
    // The loads and stores touch elements `8c..8c + 8` of `x` and `y`, below `main <= n`.
    // `y` is borrowed mutably, so nothing else reads it.
    unsafe {
        let scale = vdupq_n_f32(a);
        for c in 0..main / 8 {
            let (px, py) = (x.as_ptr().add(8 * c) as *const u16, y.as_mut_ptr().add(8 * c));
            let [x0, x1] = f16x8_to_f32(vld1q_u16(px));
            let y0 = vaddq_f32(vld1q_f32(py), vmulq_f32(scale, x0));
            let y1 = vaddq_f32(vld1q_f32(py.add(4)), vmulq_f32(scale, x1));
            vst1q_f32(py, y0);
            vst1q_f32(py.add(4), y1);
        }
    }
    scalar::axpy_f16(a, &x[main..n], &mut y[main..n]);
}

/// Computes `e^x` per lane by the method of `scalar::exp`, with fused multiply-adds where the
/// scalar function rounds twice; `silu_mul_matches_scalar_on_sweep` (gates in [-100, 100] and
/// every power of two) keeps the difference within the 1e-5 relative tolerance. Results below
/// the smallest normal f32 lose precision, `x` above 89 gives infinity and `x` below -104
/// gives zero, and NaN stays NaN.
///
/// Method: `x = n·ln 2 + r` with `n = round(x / ln 2)` and `|r| <= ln(2) / 2`, `e^r` by its
/// Taylor polynomial of degree 7 (truncation error below 1e-8 relative), then scaling by
/// `2^n` in two factors so that each is a normal f32 for every `n` in -150..=128.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
unsafe fn exp(x: float32x4_t) -> float32x4_t {
    const LOG2_E: f32 = core::f32::consts::LOG2_E;
    // ln 2 split in two: `LN2_HI` has 9 significant bits, so `n · LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1/k! for k = 7 down to 2.
    const TAYLOR: [f32; 6] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5];
    // SAFETY: the caller guarantees NEON.
    unsafe {
        // `fmax` and `fmin` return NaN when either input is NaN, so NaN passes through.
        let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-104.0)), vdupq_n_f32(89.0));
        let n = vrndnq_f32(vmulq_n_f32(x, LOG2_E));
        let r = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(LN2_HI)), n, vdupq_n_f32(LN2_LO));

        let mut p = vdupq_n_f32(TAYLOR[0]);
        for &c in &TAYLOR[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        p = vfmaq_f32(vdupq_n_f32(1.0), p, r);
        p = vfmaq_f32(vdupq_n_f32(1.0), p, r);

        // 2^n = 2^(n >> 1) · 2^(n - (n >> 1)). Both exponents lie in -75..=64.
        let n = vcvtq_s32_f32(n);
        let half = vshrq_n_s32::<1>(n);
        let rest = vsubq_s32(n, half);
        let bias = vdupq_n_s32(127);
        let scale_half = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(half, bias)));
        let scale_rest = vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(rest, bias)));
        vmulq_f32(vmulq_f32(p, scale_half), scale_rest)
    }
}

/// SwiGLU in place over the common length: `gate = gate / (1 + e^-gate) * up`.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let main = n - n % 4;
    // SAFETY: the caller guarantees NEON. The loads and stores touch elements `4c..4c + 4` of
    // `gate` and `up`, below `main <= n`. `gate` is borrowed mutably, so nothing else reads it.
    unsafe {
        let one = vdupq_n_f32(1.0);
        for c in 0..main / 4 {
            let (pg, pu) = (gate.as_mut_ptr().add(4 * c), up.as_ptr().add(4 * c));
            let g = vld1q_f32(pg);
            let silu = vdivq_f32(g, vaddq_f32(one, exp(vnegq_f32(g))));
            vst1q_f32(pg, vmulq_f32(silu, vld1q_f32(pu)));
        }
    }
    scalar::silu_mul(&mut gate[main..n], &up[main..n]);
}

/// Attention scores of one head over f16 keys, `dot_f16` per position (contract of
/// `scalar::scores_f16`).
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn scores_f16(keys: &[f16], stride: usize, q: &[f32], out: &mut [f32]) {
    for (p, score) in out.iter_mut().enumerate() {
        // SAFETY: the caller guarantees NEON.
        *score = unsafe { dot_f16(&keys[p * stride..p * stride + q.len()], q) };
    }
}

/// Attention output of one head over f16 values, `axpy_f16` per position (contract of
/// `scalar::mix_f16`).
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn mix_f16(values: &[f16], stride: usize, weights: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    let dim = out.len();
    for (p, &weight) in weights.iter().enumerate() {
        // SAFETY: the caller guarantees NEON.
        unsafe { axpy_f16(weight, &values[p * stride..p * stride + dim], out) };
    }
}
