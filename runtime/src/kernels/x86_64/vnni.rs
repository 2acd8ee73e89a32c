//! Block dot products for x86-64 with AVX-512 VNNI (`vpdpbusd`) on 256-bit registers
//! (AVX-512VL): the prompt-processing kernels of [`Isa::Avx512Vnni`](crate::kernels::Isa),
//! four interleaved rows of Q4_0 or Q4_1 against two or four tokens.
//!
//! Unlike the AVX2 kernels these do not repeat the scalar f32 operations. Each sub-block's
//! exact integer dot product stays in eight i32 lanes. The lanes are converted to f32 and
//! multiplied into eight f32 accumulators by the block's scale `d_w · d_x` with a fused
//! multiply-add, and summed once per row at the end. That removes the horizontal sum of every
//! block and token, which dominates the AVX2 kernels when several tokens share the unpacked
//! weights. The cost is a different rounding, so results agree with the scalar table within
//! the relative tolerance of `kernels_vs_scalar`, not bit for bit.
//!
//! With one token the AVX2 kernels stay faster, because their per-block work is shared by
//! four rows in one vector. For Q8_0 with int16 activations, tiles built this way with
//! `vpdpwssd` measured slower than the AVX2 one on 256-bit and on 512-bit registers. The
//! table keeps the AVX2 kernels for both cases (see `AVX512_VNNI`).
//!
//! Integer ranges: `vpdpbusd` adds four products of an unsigned nibble (0..15) and an int8
//! activation to a lane, at most 4 · 15 · 128 = 7680, and Q4_0's offset term `-8 Σ q_x` is at
//! most 8 · 32 · 128 = 32768 in magnitude. Both fit i32 exactly.

use core::arch::x86_64::*;

use super::prefetch_ahead;
use super::quant_dot::{load_i8, load_nibbles};
use crate::quant::{BlockQ4_0, BlockQ4_1, BlockQ8Act, QK};

/// A 4-bit weight format as these kernels read it: one block of 32 weights against one int8
/// activation block.
trait Format {
    type Block;
    /// Whether blocks carry a minimum (`x = q · d + m`), whose term `m · d_x · Σ q_x` is
    /// accumulated apart.
    const MIN: bool;

    /// Returns the packed nibbles of a block.
    fn nibbles(block: &Self::Block) -> &[u8; QK / 2];

    /// Returns the integer term a block's dot product starts from: Q4_0's offset `-8 Σ q_x`,
    /// else 0.
    fn start(x: &BlockQ8Act) -> i32;

    /// Returns the f16 scale and minimum of a weight block, as stored.
    fn scale_bits(block: &Self::Block) -> ([u8; 2], [u8; 2]);
}

struct Q4_0;
struct Q4_1;

impl Format for Q4_0 {
    type Block = BlockQ4_0;
    const MIN: bool = false;

    fn nibbles(block: &BlockQ4_0) -> &[u8; QK / 2] {
        &block.qs[0]
    }

    /// `Σ (q_w - 8) q_x = Σ q_w q_x - 8 Σ q_x`.
    fn start(x: &BlockQ8Act) -> i32 {
        -8 * x.sum
    }

    fn scale_bits(block: &BlockQ4_0) -> ([u8; 2], [u8; 2]) {
        (block.d, [0, 0])
    }
}

impl Format for Q4_1 {
    type Block = BlockQ4_1;
    const MIN: bool = true;

    fn nibbles(block: &BlockQ4_1) -> &[u8; QK / 2] {
        &block.qs
    }

    fn start(_x: &BlockQ8Act) -> i32 {
        0
    }

    fn scale_bits(block: &BlockQ4_1) -> ([u8; 2], [u8; 2]) {
        (block.d, block.m)
    }
}

/// Converts four f16 values, given as little-endian bytes, to f32.
///
/// # Safety
/// The CPU must support F16C.
#[inline(always)]
unsafe fn f16x4(d: [[u8; 2]; 4]) -> __m128 {
    let bits = |i: usize| i16::from_le_bytes(d[i]);
    // SAFETY: the caller guarantees F16C.
    unsafe { _mm_cvtph_ps(_mm_setr_epi16(bits(0), bits(1), bits(2), bits(3), 0, 0, 0, 0)) }
}

/// Sums the eight lanes of each of four vectors: lane `i` of the result is the sum of `v[i]`.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
unsafe fn sum4(v: [__m256; 4]) -> __m128 {
    // SAFETY: the caller guarantees AVX.
    unsafe {
        let halves = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
        _mm_add_ps(_mm256_castps256_ps128(halves), _mm256_extractf128_ps::<1>(halves))
    }
}

/// Four interleaved weight rows · `T` activation rows, `[token][row]`: the generic body of
/// every kernel here. Length contract of the AVX2 `dot_r4`: `w` contains `n` groups of four
/// blocks, group `b` being block `b` of rows 0-3, and a last incomplete group is ignored. Each
/// `x[t]` must contain at least `n` blocks, or the call panics; further blocks are ignored.
///
/// Intrinsics are not called inside closures (see the AVX2 `dot_r4`).
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C, AVX-512VL and AVX-512 VNNI.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn dot_r4<F: Format, const T: usize>(w: &[F::Block], x: [&[BlockQ8Act]; T]) -> [[f32; 4]; T] {
    let groups = w.len() / 4;
    let x = x.map(|row| &row[..groups]);
    // SAFETY: the caller guarantees the CPU features; the loops index the slices in bounds
    // and the stores write arrays of the stored size.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 4]; T];
        let mut min_acc = [_mm_setzero_ps(); T];
        for (b, group) in w.chunks_exact(4).enumerate() {
            prefetch_ahead(group);
            let weights = [
                load_nibbles(F::nibbles(&group[0])),
                load_nibbles(F::nibbles(&group[1])),
                load_nibbles(F::nibbles(&group[2])),
                load_nibbles(F::nibbles(&group[3])),
            ];
            let bits = [F::scale_bits(&group[0]), F::scale_bits(&group[1]), F::scale_bits(&group[2]), F::scale_bits(&group[3])];
            let mut scales = [0.0f32; 4];
            _mm_storeu_ps(scales.as_mut_ptr(), f16x4([bits[0].0, bits[1].0, bits[2].0, bits[3].0]));
            let mins = if F::MIN { f16x4([bits[0].1, bits[1].1, bits[2].1, bits[3].1]) } else { _mm_setzero_ps() };
            let row_scales = [_mm256_set1_ps(scales[0]), _mm256_set1_ps(scales[1]), _mm256_set1_ps(scales[2]), _mm256_set1_ps(scales[3])];
            for t in 0..T {
                let act = &x[t][b];
                let (loaded, act_scale) = (load_i8(act), _mm256_set1_ps(act.d));
                let start = _mm256_setr_epi32(F::start(act), 0, 0, 0, 0, 0, 0, 0);
                for r in 0..4 {
                    let sum = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(start, weights[r], loaded));
                    acc[t][r] = _mm256_fmadd_ps(sum, _mm256_mul_ps(row_scales[r], act_scale), acc[t][r]);
                }
                if F::MIN {
                    min_acc[t] = _mm_fmadd_ps(mins, _mm_set1_ps(act.d * act.sum as f32), min_acc[t]);
                }
            }
        }
        let mut out = [[0.0f32; 4]; T];
        for t in 0..T {
            _mm_storeu_ps(out[t].as_mut_ptr(), _mm_add_ps(sum4(acc[t]), min_acc[t]));
        }
        out
    }
}

/// Defines the table's kernels: each instantiates `dot_r4` with the table's target features.
macro_rules! kernels {
    ($($(#[$doc:meta])* fn $name:ident($w:ident: &[$block:ty], $x:ident: $xty:ty) -> $ret:ty = $format:ty, $t:literal;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU must support AVX2, FMA, F16C, AVX-512F, AVX-512BW, AVX-512VL and AVX-512 VNNI.
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
        pub(super) unsafe fn $name($w: &[$block], $x: $xty) -> $ret {
            // SAFETY: this function's target features include the ones `dot_r4` requires.
            unsafe { dot_r4::<$format, $t>($w, $x) }
        }
    )*};
}

kernels! {
    /// Four interleaved Q4_0 rows · four int8 activation rows, `[token][row]`.
    fn dot_q4_0_r4x4(w: &[BlockQ4_0], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = Q4_0, 4;
    /// Four interleaved Q4_1 rows · four int8 activation rows, `[token][row]`.
    fn dot_q4_1_r4x4(w: &[BlockQ4_1], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = Q4_1, 4;
}

/// Four interleaved Q4_0 rows · two int8 activation rows, `[token][row]`.
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C, AVX-512F, AVX-512BW, AVX-512VL and AVX-512 VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn dot_q4_0_r4x2_pair(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] {
    // SAFETY: this function's target features include the ones `dot_r4` requires.
    unsafe { dot_r4::<Q4_0, 2>(w, [x0, x1]) }
}
