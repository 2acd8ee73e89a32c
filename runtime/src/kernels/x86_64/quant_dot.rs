//! Block dot products of quantized weights with quantized activations, AVX2.
//!
//! The unit of work is a sub-block: 32 weights against one activation block. Its integer dot
//! product is exact, as in the scalar twin: eight i32 lanes are reduced to one sum, four
//! sub-blocks at a time (four blocks of one row, or one block of four interleaved rows), so
//! the four sums land in one `__m128i`. The f32 part is `acc += (d_w · d_x) · sum` with FMA,
//! one accumulator lane per row or per block position, so results differ from
//! [`scalar`](crate::kernels::scalar) only in the rounding and order of the f32 sums.
//!
//! Integer ranges: Q8_0 × int16 products are at most 128 · 32768 = 2^22, and a lane sums
//! four of them, a sub-block 32, so every sum fits i32 exactly. For 4-bit weights,
//! `_mm256_maddubs_epi16` multiplies unsigned nibbles (0..15) by int8 activations and adds
//! adjacent pairs with i16 saturation; a pair is at most 2 · 15 · 128 = 3840 in magnitude, so
//! it never saturates.

use core::arch::x86_64::*;

use bytemuck::Zeroable;

use crate::quant::{BlockQ16Act, BlockQ4_0, BlockQ4_0G, BlockQ4_0G128, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};

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
    /// exact. Formats with an offset (Q4_0's `-8`) leave it to [`Format::accumulate`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    unsafe fn dot(w: Self::Weights, x: Self::Acts) -> __m256i;

    /// Adds four sub-blocks to the four lanes of `acc`: lane `i` gets the integer sum
    /// `sums[i]` of weight block `w[i]` and activation block `x[i]`, scaled as the format
    /// dequantizes.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    unsafe fn accumulate(acc: __m128, sums: __m128i, w: [&Self::Block; 4], x: [&Self::Act; 4]) -> __m128;
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
    unsafe fn accumulate(acc: __m128, sums: __m128i, w: [&BlockQ8_0; 4], x: [&BlockQ16Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2, FMA and F16C.
        unsafe {
            let scale = _mm_mul_ps(weight_scales(w.map(|b| b.d)), _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d));
            _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc)
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

    /// The weights are stored as `q + 8`, so `Σ (q_w - 8) q_x = Σ q_w q_x - 8 Σ q_x`, with the
    /// activation sum from the block: the subtraction stays in exact integers.
    #[inline(always)]
    unsafe fn accumulate(acc: __m128, sums: __m128i, w: [&BlockQ4_0G<S>; 4], x: [&BlockQ8Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2, FMA and F16C.
        unsafe {
            let act_sums = _mm_setr_epi32(x[0].sum, x[1].sum, x[2].sum, x[3].sum);
            let sums = _mm_sub_epi32(sums, _mm_slli_epi32::<3>(act_sums));
            let scale = _mm_mul_ps(weight_scales(w.map(|b| b.d)), _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d));
            _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc)
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

    /// Adds `d_w·d_x·Σ q_w q_x + m·d_x·Σ q_x`, the two products in the scalar twin's order.
    #[inline(always)]
    unsafe fn accumulate(acc: __m128, sums: __m128i, w: [&BlockQ4_1; 4], x: [&BlockQ8Act; 4]) -> __m128 {
        // SAFETY: the caller guarantees AVX2, FMA and F16C.
        unsafe {
            let act_scales = _mm_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d);
            let act_sums = _mm_setr_epi32(x[0].sum, x[1].sum, x[2].sum, x[3].sum);
            let scale = _mm_mul_ps(weight_scales(w.map(|b| b.d)), act_scales);
            let min_scale = _mm_mul_ps(weight_scales(w.map(|b| b.m)), act_scales);
            let acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc);
            _mm_fmadd_ps(_mm_cvtepi32_ps(act_sums), min_scale, acc)
        }
    }
}

/// Converts four little-endian f16 scales to f32.
///
/// # Safety
/// The CPU must support F16C.
#[inline(always)]
unsafe fn weight_scales(d: [[u8; 2]; 4]) -> __m128 {
    let [a, b, c, e] = d.map(i16::from_le_bytes);
    // SAFETY: the caller guarantees F16C (SSE2 is part of x86-64).
    unsafe { _mm_cvtph_ps(_mm_setr_epi16(a, b, c, e, 0, 0, 0, 0)) }
}

/// Unpacks 16 bytes of nibbles into 32 unsigned bytes in weight order: the low nibbles are
/// weights 0-15, the high nibbles weights 16-31.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn load_nibbles(qs: &[u8; QK / 2]) -> __m256i {
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
unsafe fn load_i8(x: &BlockQ8Act) -> __m256i {
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
        // Pairwise sums within each 128-bit half: after two rounds, the low half holds the sums
        // of lanes 0-3 of v[0..4] and the high half the sums of lanes 4-7.
        let v01 = _mm256_hadd_epi32(v[0], v[1]);
        let v23 = _mm256_hadd_epi32(v[2], v[3]);
        let halves = _mm256_hadd_epi32(v01, v23);
        _mm_add_epi32(_mm256_castsi256_si128(halves), _mm256_extracti128_si256::<1>(halves))
    }
}

/// Sums the four lanes of `v`.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
unsafe fn sum_lanes(v: __m128) -> f32 {
    // SAFETY: the caller guarantees AVX (SSE3 and below included).
    unsafe {
        let pairs = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)))
    }
}

/// One weight row · one activation row, the generic body of the single-row kernels.
///
/// Length contract, as the scalar twin: sub-block `i` of the row (block `i / SUBBLOCKS`)
/// meets `x[i]`, for `i` below the smaller of `w.len() * SUBBLOCKS` and `x.len()`; further
/// activation blocks (the padding `matmul` adds) are ignored.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline(always)]
unsafe fn dot_row<F: Format>(w: &[F::Block], x: &[F::Act]) -> f32 {
    let units = (w.len() * F::SUBBLOCKS).min(x.len());
    let full = units - units % 4;
    // SAFETY: the caller guarantees AVX2, FMA and F16C.
    unsafe {
        let mut acc = _mm_setzero_ps();
        for start in (0..full).step_by(4) {
            acc = add_units::<F>(acc, w, x, start, 4);
        }
        if full < units {
            acc = add_units::<F>(acc, w, x, full, units - full);
        }
        sum_lanes(acc)
    }
}

/// Adds sub-blocks `start..start + count` of one row (`count` at most 4) to the lanes of `acc`,
/// one sub-block per lane. Missing lanes get zero blocks, whose scales and sums are zero, so
/// they add nothing.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. Sub-blocks up to `start + count` must exist in
/// `w` and `x`, or the call panics.
#[inline(always)]
unsafe fn add_units<F: Format>(acc: __m128, w: &[F::Block], x: &[F::Act], start: usize, count: usize) -> __m128 {
    let zero_block = F::Block::zeroed();
    let zero_act = F::Act::zeroed();
    let mut blocks = [&zero_block; 4];
    let mut acts = [&zero_act; 4];
    // SAFETY: the caller guarantees AVX2, FMA and F16C; slices are indexed with bounds checks.
    unsafe {
        let mut lanes = [_mm256_setzero_si256(); 4];
        for i in 0..count {
            let unit = start + i;
            blocks[i] = &w[unit / F::SUBBLOCKS];
            acts[i] = &x[unit];
            lanes[i] = F::dot(F::load_weights(blocks[i], unit % F::SUBBLOCKS), F::load_acts(acts[i]));
        }
        F::accumulate(acc, reduce4(lanes), blocks, acts)
    }
}

/// Four interleaved weight rows · `T` activation rows, the generic body of the `_r4` kernels:
/// each weight sub-block is unpacked once for all tokens, each activation block loaded once
/// for all four rows. Returns `[token][row]`.
///
/// Length contract, as the scalar twin: `w` holds `n` groups of four blocks (block `b` of
/// rows 0-3, for `b` in `0..n`; a last incomplete group is ignored), and each `x[t]` holds at
/// least `n * SUBBLOCKS` blocks, or the call panics; further blocks are ignored.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[inline(always)]
unsafe fn dot_r4<F: Format, const T: usize>(w: &[F::Block], x: [&[F::Act]; T]) -> [[f32; 4]; T] {
    let groups = w.len() / 4;
    let units = groups * F::SUBBLOCKS;
    let x = x.map(|row| &row[..units]);
    // SAFETY: the caller guarantees AVX2, FMA and F16C; the loop indexes the slices in bounds.
    unsafe {
        let mut acc = [_mm_setzero_ps(); T];
        for unit in 0..units {
            let (b, sub) = (unit / F::SUBBLOCKS, unit % F::SUBBLOCKS);
            let blocks = [&w[4 * b], &w[4 * b + 1], &w[4 * b + 2], &w[4 * b + 3]];
            let weights = blocks.map(|block| F::load_weights(block, sub));
            for t in 0..T {
                let act = &x[t][unit];
                let loaded = F::load_acts(act);
                let lanes = weights.map(|rows| F::dot(rows, loaded));
                acc[t] = F::accumulate(acc[t], reduce4(lanes), blocks, [act; 4]);
            }
        }
        acc.map(|lanes| {
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), lanes);
            out
        })
    }
}

/// Q8_0 row · int16 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> f32 {
    // SAFETY: this function's target features are the ones `dot_row` requires.
    unsafe { dot_row::<Q8_0>(w, x) }
}

/// Q4_0 row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features are the ones `dot_row` requires.
    unsafe { dot_row::<Q4_0<1>>(w, x) }
}

/// Q4_0 (groups of 128) row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g128(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features are the ones `dot_row` requires.
    unsafe { dot_row::<Q4_0<4>>(w, x) }
}

/// Q4_1 row · int8 activations (length contract of `dot_row`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> f32 {
    // SAFETY: this function's target features are the ones `dot_row` requires.
    unsafe { dot_row::<Q4_1>(w, x) }
}

/// Four interleaved Q8_0 rows · int16 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q8_0_r4(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> [f32; 4] {
    // SAFETY: this function's target features are the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q8_0, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 rows · int8 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_r4(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features are the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_0<1>, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_0 (groups of 128) rows · int8 activations (length contract of
/// `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_0_g128_r4(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features are the ones `dot_r4` requires.
    let [out] = unsafe { dot_r4::<Q4_0<4>, 1>(w, [x]) };
    out
}

/// Four interleaved Q4_1 rows · int8 activations (length contract of `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_q4_1_r4(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> [f32; 4] {
    // SAFETY: this function's target features are the ones `dot_r4` requires.
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
    // SAFETY: this function's target features are the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0<1>, 2>(w, [x0, x1]) }
}
