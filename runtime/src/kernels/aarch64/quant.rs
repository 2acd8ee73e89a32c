//! Block dot products of quantized weights with quantized activations, NEON.
//!
//! The unit of work is a sub-block: 32 weights against one activation block. Its integer dot
//! product is computed in vector lanes and reduced to an exact i32. The f32 part then repeats
//! the scalar twin operation for operation (`sum += d_w · d_x · dot` with a separate multiply
//! and add, in block order, one lane per row in the four-row kernels), so the results round as
//! the scalar kernels' do. The kernel tests hold them to `scalar` within a tolerance only.
//!
//! Integer ranges: Q8_0 × int16 products are at most 128 · 32768 = 2^22 in magnitude and a
//! sub-block adds 32 of them, so every lane and sum fits i32 exactly. For 4-bit weights the
//! nibbles stay unsigned (0..15) and Q4_0's `-8` is applied once per sub-block through the
//! activation sum, as in the scalar kernels. A product is then at most 15 · 128 = 1920 in
//! magnitude, so the i16 products of `neon::Neon` cannot overflow either.

use core::arch::aarch64::*;

use super::float::f16x4_to_f32;
use crate::quant::{f16_to_f32, BlockQ16Act, BlockQ4_0, BlockQ4_0G, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};

/// A signed 8-bit dot product step, the one operation in which the instruction sets differ.
pub(super) trait Int8Dot {
    /// Adds the 16 products `a[i] · b[i]` to `acc`, exactly. Which lane receives which product
    /// depends on the implementation, so only the sum of the four lanes is meaningful.
    ///
    /// # Safety
    /// The CPU must support NEON and the instructions of the implementation.
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// Loads the 32 values of an int8 activation block: values 0..16 and 16..32.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn load_act(x: &BlockQ8Act) -> [int8x16_t; 2] {
    let qs = x.qs.as_ptr();
    // SAFETY: the caller guarantees NEON. Each load reads 16 of the 32 bytes of `qs`.
    unsafe { [vld1q_s8(qs), vld1q_s8(qs.add(QK / 2))] }
}

/// Unpacks the 32 weights of a 4-bit sub-block to unsigned values in int8 lanes: the low
/// nibbles (weights 0..16) and the high nibbles (weights 16..32).
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn unpack_nibbles(qs: &[u8; QK / 2]) -> [int8x16_t; 2] {
    // SAFETY: the caller guarantees NEON. The load reads the 16 bytes of `qs`.
    unsafe {
        let bytes = vld1q_u8(qs.as_ptr());
        let low = vandq_u8(bytes, vdupq_n_u8(0x0F));
        let high = vshrq_n_u8::<4>(bytes);
        [vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(high)]
    }
}

/// Computes the dot product of a packed 4-bit sub-block (unsigned nibbles) with loaded
/// activations, as four lanes whose sum is exact.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
unsafe fn dot_u4<D: Int8Dot>(qs: &[u8; QK / 2], x: [int8x16_t; 2]) -> int32x4_t {
    // SAFETY: the caller guarantees NEON and the instructions of `D`.
    unsafe {
        let [low, high] = unpack_nibbles(qs);
        D::dot(D::dot(vdupq_n_s32(0), low, x[0]), high, x[1])
    }
}

/// Loads the 32 values of an int16 activation block, eight per register.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
unsafe fn load_act_16(x: &BlockQ16Act) -> [int16x8_t; 4] {
    let qs = x.qs.as_ptr();
    // SAFETY: the caller guarantees NEON. Each load reads 8 of the 32 values of `qs`.
    unsafe { [vld1q_s16(qs), vld1q_s16(qs.add(8)), vld1q_s16(qs.add(16)), vld1q_s16(qs.add(24))] }
}

/// Computes the dot product of 32 int8 weights with loaded int16 activations, as four lanes
/// whose sum is exact. The weights are widened to int16 and multiplied into int32 (`smull`,
/// `smlal`).
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
unsafe fn dot_i8_i16(w: &[i8; QK], x: [int16x8_t; 4]) -> int32x4_t {
    let qs = w.as_ptr();
    // SAFETY: the caller guarantees NEON. Each load reads 16 of the 32 bytes of `w`.
    unsafe {
        let w0 = vld1q_s8(qs);
        let w1 = vld1q_s8(qs.add(QK / 2));
        let w = [vmovl_s8(vget_low_s8(w0)), vmovl_high_s8(w0), vmovl_s8(vget_low_s8(w1)), vmovl_high_s8(w1)];
        // Two accumulators, for the low and the high halves, so that consecutive
        // multiply-accumulates do not wait for each other.
        let mut low = vmull_s16(vget_low_s16(w[0]), vget_low_s16(x[0]));
        let mut high = vmull_high_s16(w[0], x[0]);
        for i in 1..4 {
            low = vmlal_s16(low, vget_low_s16(w[i]), vget_low_s16(x[i]));
            high = vmlal_high_s16(high, w[i], x[i]);
        }
        vaddq_s32(low, high)
    }
}

/// Sums the lanes of each of four vectors: `[Σa[0], Σa[1], Σa[2], Σa[3]]`.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn reduce4(a: [int32x4_t; 4]) -> int32x4_t {
    // SAFETY: the caller guarantees NEON.
    unsafe { vpaddq_s32(vpaddq_s32(a[0], a[1]), vpaddq_s32(a[2], a[3])) }
}

/// Converts the f16 scales of four interleaved blocks to f32 lanes.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn scales4(d: [[u8; 2]; 4]) -> float32x4_t {
    let bits = [u16::from_le_bytes(d[0]), u16::from_le_bytes(d[1]), u16::from_le_bytes(d[2]), u16::from_le_bytes(d[3])];
    // SAFETY: the caller guarantees NEON.
    unsafe { f16x4_to_f32(bits) }
}

/// Returns `acc + (d · d_x) · (dots - 8 · Σx)` per lane: the Q4_0 sub-blocks of four rows against
/// one activation block, scaled as the scalar kernel scales one.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn add_q4_0(acc: float32x4_t, d: float32x4_t, x: &BlockQ8Act, dots: int32x4_t) -> float32x4_t {
    // SAFETY: the caller guarantees NEON.
    unsafe {
        let ints = vsubq_s32(dots, vdupq_n_s32(8 * x.sum));
        vaddq_f32(acc, vmulq_f32(vmulq_n_f32(d, x.d), vcvtq_f32_s32(ints)))
    }
}

/// Stores four lanes in an array.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn store4(v: float32x4_t) -> [f32; 4] {
    let mut out = [0.0f32; 4];
    // SAFETY: the caller guarantees NEON. The store writes the four values of `out`.
    unsafe { vst1q_f32(out.as_mut_ptr(), v) };
    out
}

/// Q8_0 weights · int16 activations, one row.
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in w.iter().zip(x) {
        // SAFETY: the caller guarantees NEON.
        let dot = unsafe { vaddvq_s32(dot_i8_i16(&wb.qs, load_act_16(xb))) };
        sum += f16_to_f32(wb.d) * xb.d * dot as f32;
    }
    sum
}

/// Q4_0 (groups of `32 * S`) weights · int8 activations, one row.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
pub(super) unsafe fn dot_q4_0<D: Int8Dot, const S: usize>(w: &[BlockQ4_0G<S>], x: &[BlockQ8Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xs) in w.iter().zip(x.chunks(S)) {
        let d = f16_to_f32(wb.d);
        for (qs, xb) in wb.qs.iter().zip(xs) {
            // SAFETY: the caller guarantees NEON and the instructions of `D`.
            let dot = unsafe { vaddvq_s32(dot_u4::<D>(qs, load_act(xb))) };
            sum += d * xb.d * (dot - 8 * xb.sum) as f32;
        }
    }
    sum
}

/// Q4_1 weights · int8 activations, one row.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
pub(super) unsafe fn dot_q4_1<D: Int8Dot>(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> f32 {
    let mut sum = 0.0f32;
    for (wb, xb) in w.iter().zip(x) {
        let d = f16_to_f32(wb.d);
        let m = f16_to_f32(wb.m);
        // SAFETY: the caller guarantees NEON and the instructions of `D`.
        let dot = unsafe { vaddvq_s32(dot_u4::<D>(&wb.qs, load_act(xb))) };
        sum += d * xb.d * dot as f32 + m * xb.d * xb.sum as f32;
    }
    sum
}

/// Q8_0, four interleaved rows: `w` contains block 0 of rows 0-3, block 1 of rows 0-3, ...
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
pub(super) unsafe fn dot_q8_0_r4(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> [f32; 4] {
    // SAFETY: the caller guarantees NEON.
    unsafe {
        let mut out = vdupq_n_f32(0.0);
        for (b, group) in w.chunks_exact(4).enumerate() {
            let xb = &x[b];
            let acts = load_act_16(xb);
            let mut dots = [vdupq_n_s32(0); 4];
            for r in 0..4 {
                dots[r] = dot_i8_i16(&group[r].qs, acts);
            }
            let d = scales4([group[0].d, group[1].d, group[2].d, group[3].d]);
            let dots = reduce4(dots);
            out = vaddq_f32(out, vmulq_f32(vmulq_n_f32(d, xb.d), vcvtq_f32_s32(dots)));
        }
        store4(out)
    }
}

/// Q4_0 (groups of `32 * S`), four interleaved rows.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
pub(super) unsafe fn dot_q4_0_r4<D: Int8Dot, const S: usize>(w: &[BlockQ4_0G<S>], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: the caller guarantees NEON and the instructions of `D`.
    unsafe {
        let mut out = vdupq_n_f32(0.0);
        for (b, group) in w.chunks_exact(4).enumerate() {
            let xs = &x[b * S..(b + 1) * S];
            let d = scales4([group[0].d, group[1].d, group[2].d, group[3].d]);
            // Like the scalar kernel, sum the sub-blocks of a block before adding the block.
            let mut block = vdupq_n_f32(0.0);
            for (s, xb) in xs.iter().enumerate() {
                let acts = load_act(xb);
                let mut dots = [vdupq_n_s32(0); 4];
                for r in 0..4 {
                    dots[r] = dot_u4::<D>(&group[r].qs[s], acts);
                }
                block = add_q4_0(block, d, xb, reduce4(dots));
            }
            out = vaddq_f32(out, block);
        }
        store4(out)
    }
}

/// Q4_1, four interleaved rows.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
pub(super) unsafe fn dot_q4_1_r4<D: Int8Dot>(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: the caller guarantees NEON and the instructions of `D`.
    unsafe {
        let mut out = vdupq_n_f32(0.0);
        for (b, group) in w.chunks_exact(4).enumerate() {
            let xb = &x[b];
            let acts = load_act(xb);
            let mut dots = [vdupq_n_s32(0); 4];
            for r in 0..4 {
                dots[r] = dot_u4::<D>(&group[r].qs, acts);
            }
            let dots = reduce4(dots);
            let d = scales4([group[0].d, group[1].d, group[2].d, group[3].d]);
            let m = scales4([group[0].m, group[1].m, group[2].m, group[3].m]);
            let scaled = vmulq_f32(vmulq_n_f32(d, xb.d), vcvtq_f32_s32(dots));
            let offset = vmulq_n_f32(vmulq_n_f32(m, xb.d), xb.sum as f32);
            out = vaddq_f32(out, vaddq_f32(scaled, offset));
        }
        store4(out)
    }
}

/// Q4_0, four interleaved rows · two activation rows, `[token][row]`: each weight block is
/// unpacked once for both tokens.
///
/// # Safety
/// The CPU must support NEON and the instructions of `D`.
#[inline(always)]
pub(super) unsafe fn dot_q4_0_r4x2<D: Int8Dot>(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] {
    // SAFETY: the caller guarantees NEON and the instructions of `D`.
    unsafe {
        let mut out0 = vdupq_n_f32(0.0);
        let mut out1 = vdupq_n_f32(0.0);
        for (b, group) in w.chunks_exact(4).enumerate() {
            let (xb0, xb1) = (&x0[b], &x1[b]);
            let (acts0, acts1) = (load_act(xb0), load_act(xb1));
            let mut dots0 = [vdupq_n_s32(0); 4];
            let mut dots1 = [vdupq_n_s32(0); 4];
            for r in 0..4 {
                let [low, high] = unpack_nibbles(&group[r].qs[0]);
                dots0[r] = D::dot(D::dot(dots0[r], low, acts0[0]), high, acts0[1]);
                dots1[r] = D::dot(D::dot(dots1[r], low, acts1[0]), high, acts1[1]);
            }
            let d = scales4([group[0].d, group[1].d, group[2].d, group[3].d]);
            out0 = add_q4_0(out0, d, xb0, reduce4(dots0));
            out1 = add_q4_0(out1, d, xb1, reduce4(dots1));
        }
        [store4(out0), store4(out1)]
    }
}
