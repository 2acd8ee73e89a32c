//! Block dot products of quantized weights with quantized activations, AVX2.
//!
//! The unit of work is a sub-block: 32 weights against one activation block. Its integer dot
//! product is exact, as in the scalar twin. The eight i32 lanes of four sub-blocks (four
//! blocks of one row, or one block of four interleaved rows) are reduced together, so the
//! four sums land in one `__m128i`.
//!
//! The f32 part repeats the scalar twin's operations in its order: each sub-block's term is
//! `(d_w · d_x) · sum` (plus `(m · d_x) · Σq_x` for Q4_1), and the terms of a row are added
//! one by one in block order. The results are therefore bit-identical to
//! [`scalar`](crate::kernels::scalar), which `kernels_vs_scalar` checks. FMA is not used
//! because it rounds once where the scalar twin rounds twice. On SmolLM2-135M at Q4_0, that
//! one-ulp difference, re-quantized to int8 activations over 30 layers, moved logits by about
//! 0.05 and changed a greedy token whose top-2 margin was 0.07.
//!
//! Integer ranges: Q8_0 × int16 products are at most 128 · 32768 = 2^22, and a lane sums
//! four of them, a sub-block 32, so every sum fits i32 exactly. For 4-bit weights,
//! `_mm256_maddubs_epi16` multiplies unsigned nibbles (0..15) by int8 activations and adds
//! adjacent pairs with i16 saturation; a pair is at most 2 · 15 · 128 = 3840 in magnitude, so
//! it never saturates.

use core::arch::x86_64::*;

use bytemuck::Zeroable;

use super::prefetch_ahead;
use crate::quant::{BlockQ16Act, BlockQ4_0, BlockQ4_0G, BlockQ4_0G128, BlockQ4_0G64, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};

/// A weight format as the block kernels read it: weight blocks of `SUBBLOCKS` sub-blocks of
/// 32 weights, each read against one activation block.
trait Format {
    /// Weight block.
    type Block: Copy + Zeroable;
    /// Activation block of 32 values.
    type Act: Copy + Zeroable;
    /// The weights of one sub-block in registers, unpacked for [`Format::dot`].
    type Weights: Copy;
    /// One activation block in registers.
    type Acts: Copy;
    /// Sub-blocks (and activation blocks) per weight block.
    const SUBBLOCKS: usize;

    /// Loads sub-block `sub` (below `SUBBLOCKS`) of `block`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn load_weights(block: &Self::Block, sub: usize) -> Self::Weights;

    /// Loads an activation block.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn load_acts(x: &Self::Act) -> Self::Acts;

    /// Computes the integer dot product of one sub-block as eight i32 lanes whose sum is
    /// exact. Formats with an offset (Q4_0's `-8`) leave it to [`Format::terms`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn dot(w: Self::Weights, x: Self::Acts) -> __m256i;

    /// Scales the integer sums of four sub-blocks as the format dequantizes: lane `i` is the
    /// f32 term of `sums[i]`, the sum of weight block `w[i]` against activation block `x[i]`,
    /// computed with the scalar twin's operations.
    ///
    /// # Safety
    /// The CPU must support AVX2 and F16C.
    unsafe fn terms(sums: __m128i, w: [&Self::Block; 4], x: [&Self::Act; 4]) -> __m128;
}

/// Q8_0 weights against int16 activations.
struct Q8_0;

/// Q4_0 weights in groups of `32 * S` against int8 activations.
struct Q4_0<const S: usize>;

/// Q4_1 weights against int8 activations.
struct Q4_1;

impl Format for Q8_0 {
    type Block = BlockQ8_0;
    type Act = BlockQ16Act;
    type Weights = [__m256i; 2];
    type Acts = [__m256i; 2];
    const SUBBLOCKS: usize = 1;

    #[inline(always)]
    unsafe fn load_weights(block: &BlockQ8_0, _sub: usize) -> [__m256i; 2] {
        let qs = block.qs.as_ptr();
        // SAFETY: the caller guarantees AVX2. Each load reads 16 of the 32 bytes of `qs`.
        unsafe {
            [
                _mm256_cvtepi8_epi16(_mm_loadu_si128(qs as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(qs.add(QK / 2) as *const __m128i)),
            ]
        }
    }

    #[inline(always)]
    unsafe fn load_acts(x: &BlockQ16Act) -> [__m256i; 2] {
        let qs = x.qs.as_ptr();
        // SAFETY: the caller guarantees AVX2. Each load reads 16 of the 32 values of `qs`.
        unsafe { [_mm256_loadu_si256(qs as *const __m256i), _mm256_loadu_si256(qs.add(QK / 2) as *const __m256i)] }
    }

    #[inline(always)]
    unsafe fn dot(w: [__m256i; 2], x: [__m256i; 2]) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_add_epi32(_mm256_madd_epi16(w[0], x[0]), _mm256_madd_epi16(w[1], x[1])) }
    }

    #[inline(always)]
    unsafe fn terms(sums: __m128i, w: [&BlockQ8_0; 4], x: [&BlockQ16Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2 and F16C.
        unsafe {
            let scale = _mm_mul_ps(weight_scales([w[0].d, w[1].d, w[2].d, w[3].d]), _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d));
            _mm_mul_ps(scale, _mm_cvtepi32_ps(sums))
        }
    }
}

impl<const S: usize> Format for Q4_0<S> {
    type Block = BlockQ4_0G<S>;
    type Act = BlockQ8Act;
    type Weights = __m256i;
    type Acts = __m256i;
    const SUBBLOCKS: usize = S;

    #[inline(always)]
    unsafe fn load_weights(block: &BlockQ4_0G<S>, sub: usize) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { load_nibbles(&block.qs[sub]) }
    }

    #[inline(always)]
    unsafe fn load_acts(x: &BlockQ8Act) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { load_i8(x) }
    }

    #[inline(always)]
    unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { dot_u4_i8(w, x) }
    }

    /// Subtracts the `-8` offset as `Σ (q_w - 8) q_x = Σ q_w q_x - 8 Σ q_x`, with `Σ q_x` from
    /// the activation block, in exact integers; then scales.
    #[inline(always)]
    unsafe fn terms(sums: __m128i, w: [&BlockQ4_0G<S>; 4], x: [&BlockQ8Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2 and F16C.
        unsafe {
            let act_sums = _mm_setr_epi32(x[0].sum, x[1].sum, x[2].sum, x[3].sum);
            let sums = _mm_sub_epi32(sums, _mm_slli_epi32::<3>(act_sums));
            let scale = _mm_mul_ps(weight_scales([w[0].d, w[1].d, w[2].d, w[3].d]), _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d));
            _mm_mul_ps(scale, _mm_cvtepi32_ps(sums))
        }
    }
}

impl Format for Q4_1 {
    type Block = BlockQ4_1;
    type Act = BlockQ8Act;
    type Weights = __m256i;
    type Acts = __m256i;
    const SUBBLOCKS: usize = 1;

    #[inline(always)]
    unsafe fn load_weights(block: &BlockQ4_1, _sub: usize) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { load_nibbles(&block.qs) }
    }

    #[inline(always)]
    unsafe fn load_acts(x: &BlockQ8Act) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { load_i8(x) }
    }

    #[inline(always)]
    unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { dot_u4_i8(w, x) }
    }

    /// Computes `(d_w·d_x)·Σ q_w q_x + (m·d_x)·Σ q_x`.
    #[inline(always)]
    unsafe fn terms(sums: __m128i, w: [&BlockQ4_1; 4], x: [&BlockQ8Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2 and F16C.
        unsafe {
            let act_scales = _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d);
            let act_sums = _mm_setr_epi32(x[0].sum, x[1].sum, x[2].sum, x[3].sum);
            let scale = _mm_mul_ps(weight_scales([w[0].d, w[1].d, w[2].d, w[3].d]), act_scales);
            let min_scale = _mm_mul_ps(weight_scales([w[0].m, w[1].m, w[2].m, w[3].m]), act_scales);
            _mm_add_ps(_mm_mul_ps(scale, _mm_cvtepi32_ps(sums)), _mm_mul_ps(min_scale, _mm_cvtepi32_ps(act_sums)))
        }
    }
}

/// Converts four little-endian f16 scales to f32.
///
/// # Safety
/// The CPU must support F16C.
#[inline(always)]
unsafe fn weight_scales(d: [[u8; 2]; 4]) -> __m128 {
    let bits = |i: usize| i16::from_le_bytes(d[i]);
    // SAFETY: the caller guarantees F16C (SSE2 is part of x86-64).
    unsafe { _mm_cvtph_ps(_mm_setr_epi16(bits(0), bits(1), bits(2), bits(3), 0, 0, 0, 0)) }
}

/// Unpacks 16 bytes of nibbles into 32 unsigned bytes in weight order: the low nibbles are
/// weights 0-15, the high nibbles weights 16-31.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
pub(super) unsafe fn load_nibbles(qs: &[u8; QK / 2]) -> __m256i {
    // SAFETY: the caller guarantees AVX2. The load reads exactly the 16 bytes of `qs`.
    unsafe {
        let packed = _mm_loadu_si128(qs.as_ptr() as *const __m128i);
        let both = _mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }
}

/// Loads the 32 int8 values of an activation block.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
pub(super) unsafe fn load_i8(x: &BlockQ8Act) -> __m256i {
    // SAFETY: the caller guarantees AVX2. The load reads exactly the 32 bytes of `qs`.
    unsafe { _mm256_loadu_si256(x.qs.as_ptr() as *const __m256i) }
}

/// Multiplies 32 unsigned nibbles by 32 int8 values: eight i32 lanes summing to the exact dot
/// product (see the module comment on saturation).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn dot_u4_i8(w: __m256i, x: __m256i) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe { _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)) }
}

/// Sums the eight lanes of each of four vectors: lane `i` of the result is the sum of `v[i]`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn reduce4(v: [__m256i; 4]) -> __m128i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        // Pairwise sums within each 128-bit half. After two rounds the low half contains the
        // sums of lanes 0-3 of v[0..4], and the high half the sums of lanes 4-7.
        let v01 = _mm256_hadd_epi32(v[0], v[1]);
        let v23 = _mm256_hadd_epi32(v[2], v[3]);
        let halves = _mm256_hadd_epi32(v01, v23);
        _mm_add_epi32(_mm256_castsi256_si128(halves), _mm256_extracti128_si256::<1>(halves))
    }
}

/// Computes one weight row · one activation row, the generic body of the single-row kernels.
///
/// Length contract, as the scalar twin: sub-block `i` of the row (block `i / SUBBLOCKS`)
/// meets `x[i]`, for `i` below the smaller of `w.len() * SUBBLOCKS` and `x.len()`. Further
/// activation blocks, such as the padding `matmul` adds, are ignored.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[inline(always)]
unsafe fn dot_row<F: Format>(w: &[F::Block], x: &[F::Act]) -> f32 {
    let units = (w.len() * F::SUBBLOCKS).min(x.len());
    let mut sum = 0.0f32;
    let mut start = 0;
    while start < units {
        let count = (units - start).min(4);
        let mut terms = [0.0f32; 4];
        // SAFETY: the caller guarantees AVX2 and F16C; the store writes the four floats of
        // `terms`.
        unsafe { _mm_storeu_ps(terms.as_mut_ptr(), unit_terms::<F>(w, x, start, count)) };
        for term in &terms[..count] {
            sum += term;
        }
        start += 4;
    }
    sum
}

/// Computes the f32 terms of sub-blocks `start..start + count` of one row (`count` from 1 to
/// 4), one per lane. Lanes from `count` on read zero blocks and are to be ignored. Panics if a
/// sub-block lies outside `w` or `x`.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[inline(always)]
unsafe fn unit_terms<F: Format>(w: &[F::Block], x: &[F::Act], start: usize, count: usize) -> __m128 {
    let zero_block = F::Block::zeroed();
    let zero_act = F::Act::zeroed();
    let mut blocks = [&zero_block; 4];
    let mut acts = [&zero_act; 4];
    // SAFETY: the caller guarantees AVX2 and F16C.
    unsafe {
        let mut lanes = [_mm256_setzero_si256(); 4];
        for i in 0..count {
            let unit = start + i;
            blocks[i] = &w[unit / F::SUBBLOCKS];
            acts[i] = &x[unit];
            lanes[i] = F::dot(F::load_weights(blocks[i], unit % F::SUBBLOCKS), F::load_acts(acts[i]));
        }
        F::terms(reduce4(lanes), blocks, acts)
    }
}

/// Computes four interleaved weight rows · `T` activation rows, the generic body of the `_r4`
/// kernels. Each weight sub-block is unpacked once for all tokens, and each activation block
/// is loaded once for all four rows. Returns `[token][row]`.
///
/// Intrinsics are not called inside closures, such as those `array::map` takes. A closure is a
/// separate function without the target features, so LLVM does not inline intrinsics into
/// it. Every intrinsic then becomes a call, which made this kernel five times slower than
/// scalar.
///
/// As in the scalar twin, the terms of a block's sub-blocks are summed first, and that sum is
/// added to the row's total.
///
/// Length contract, as the scalar twin: `w` contains `n` groups of four blocks, group `b`
/// being block `b` of rows 0-3, and a last incomplete group is ignored. Each `x[t]` must
/// contain at least `n * SUBBLOCKS` blocks, or the call panics. Further blocks are ignored.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
// `t` indexes the activation rows and the accumulators alike.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn dot_r4<F: Format, const T: usize>(w: &[F::Block], x: [&[F::Act]; T]) -> [[f32; 4]; T] {
    let groups = w.len() / 4;
    let x = x.map(|row| &row[..groups * F::SUBBLOCKS]);
    // SAFETY: the caller guarantees AVX2 and F16C; the loops index the slices in bounds.
    unsafe {
        let mut acc = [_mm_setzero_ps(); T];
        for (b, group) in w.chunks_exact(4).enumerate() {
            prefetch_ahead(group);
            let blocks = [&group[0], &group[1], &group[2], &group[3]];
            let mut block_sums = [_mm_setzero_ps(); T];
            for sub in 0..F::SUBBLOCKS {
                let weights = [
                    F::load_weights(blocks[0], sub),
                    F::load_weights(blocks[1], sub),
                    F::load_weights(blocks[2], sub),
                    F::load_weights(blocks[3], sub),
                ];
                for t in 0..T {
                    let act = &x[t][b * F::SUBBLOCKS + sub];
                    let loaded = F::load_acts(act);
                    let lanes = [F::dot(weights[0], loaded), F::dot(weights[1], loaded), F::dot(weights[2], loaded), F::dot(weights[3], loaded)];
                    block_sums[t] = _mm_add_ps(block_sums[t], F::terms(reduce4(lanes), blocks, [act; 4]));
                }
            }
            for t in 0..T {
                acc[t] = _mm_add_ps(acc[t], block_sums[t]);
            }
        }
        let mut out = [[0.0f32; 4]; T];
        for t in 0..T {
            _mm_storeu_ps(out[t].as_mut_ptr(), acc[t]);
        }
        out
    }
}

/// Q8_0 row · int16 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> f32 {
    // SAFETY: this function's target features include the ones `dot_row` requires.
    unsafe { dot_row::<Q8_0>(w, x) }
}

/// Q4_0 row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features include the ones `dot_row` requires.
    unsafe { dot_row::<Q4_0<1>>(w, x) }
}

/// Q4_0 (groups of 64) row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g64(w: &[BlockQ4_0G64], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features include the ones `dot_row` requires.
    unsafe { dot_row::<Q4_0<2>>(w, x) }
}

/// Q4_0 (groups of 128) row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g128(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features include the ones `dot_row` requires.
    unsafe { dot_row::<Q4_0<4>>(w, x) }
}

/// Q4_1 row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features include the ones `dot_row` requires.
    unsafe { dot_row::<Q4_1>(w, x) }
}

/// Four interleaved Q8_0 rows · int16 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0_r4(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> [f32; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q8_0, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 rows · int8 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_r4(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_0<1>, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 (groups of 64) rows · int8 activations (length contract of
/// `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g64_r4(w: &[BlockQ4_0G64], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_0<2>, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 (groups of 128) rows · int8 activations (length contract of
/// `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g128_r4(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_0<4>, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_1 rows · int8 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_1_r4(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_1, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 rows · two int8 activation rows, `[token][row]` (length contract of
/// `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_r4x2(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0<1>, 2>(w, [x0, x1]) }
}

/// Four interleaved Q8_0 rows · four activation rows, `[token][row]` (length
/// contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0_r4x4(w: &[BlockQ8_0], x: [&[BlockQ16Act]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q8_0, 4>(w, x) }
}

/// Four interleaved Q4_0 rows · four activation rows, `[token][row]` (length
/// contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_r4x4(w: &[BlockQ4_0], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0<1>, 4>(w, x) }
}

/// Four interleaved Q4_0 (groups of 64) rows · four activation rows, `[token][row]` (length
/// contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g64_r4x4(w: &[BlockQ4_0G64], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0<2>, 4>(w, x) }
}

/// Four interleaved Q4_0 (groups of 128) rows · four activation rows, `[token][row]` (length
/// contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g128_r4x4(w: &[BlockQ4_0G128], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0<4>, 4>(w, x) }
}

/// Four interleaved Q4_1 rows · four activation rows, `[token][row]` (length
/// contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_1_r4x4(w: &[BlockQ4_1], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_1, 4>(w, x) }
}
