//! The NEON + dotprod + i8mm table: the dotprod kernels, and a two-token Q4_0 kernel that
//! multiplies int8 tiles with `smmla`.
//!
//! `smmla vd.4s, vn.16b, vm.16b` adds to the 2x2 i32 matrix `vd` (row-major) the product of
//! the 2x8 matrix `vn` (row `i` in bytes `8i..8i + 8`) and the 8x2 matrix `vm` (column `j` in
//! bytes `8j..8j + 8`): `vd[2i + j] += Σ_k vn[8i + k] · vm[8j + k]`. With two weight rows in
//! `vn` and the same eight positions of two activation rows in `vm`, one instruction computes
//! four dot products of eight values.

use core::arch::aarch64::*;
use core::arch::asm;

use super::dotprod::Sdot;
use super::quant::{load_act, scales4, store4, unpack_nibbles};
use crate::quant::{BlockQ4_0, BlockQ8Act};

/// Returns `acc + a · bᵀ` for the 2x8 int8 matrices `a` and `b`, computed with `smmla`.
///
/// `smmla` is written with `asm!` because its intrinsic `vmmlaq_s32` is unstable in Rust 1.96
/// (`stdarch_neon_i8mm`). As with `sdot`, every caller up to the `#[target_feature]` instance
/// must be `#[inline(always)]`, or the assembler rejects the instruction.
///
/// # Safety
/// The CPU must support the i8mm extension.
#[inline(always)]
unsafe fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: the caller guarantees i8mm. `smmla` reads only its three vector registers and
    // writes only the accumulator, which is `inout`. It touches no memory, stack or flags.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// Joins the low 8 bytes of `a` and then of `b` (`high` false), or the high 8 bytes of each
/// (`high` true).
///
/// # Safety
/// The CPU must support NEON.
#[inline(always)]
unsafe fn zip_halves(a: int8x16_t, b: int8x16_t, high: bool) -> int8x16_t {
    // SAFETY: the caller guarantees NEON.
    unsafe {
        let (a, b) = (vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b));
        vreinterpretq_s8_s64(if high { vzip2q_s64(a, b) } else { vzip1q_s64(a, b) })
    }
}

/// Computes the dot products of two unpacked 32-weight rows `a` and `b` with two activation
/// rows, as `[a·x0, a·x1, b·x0, b·x1]`. `acts[k]` contains values `8k..8k + 8` of token 0, then of token 1.
///
/// # Safety
/// The CPU must support NEON and i8mm.
#[inline(always)]
unsafe fn dot_tile(a: [int8x16_t; 2], b: [int8x16_t; 2], acts: [int8x16_t; 4]) -> int32x4_t {
    // SAFETY: the caller guarantees NEON and i8mm.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        acc = smmla(acc, zip_halves(a[0], b[0], false), acts[0]);
        acc = smmla(acc, zip_halves(a[0], b[0], true), acts[1]);
        acc = smmla(acc, zip_halves(a[1], b[1], false), acts[2]);
        smmla(acc, zip_halves(a[1], b[1], true), acts[3])
    }
}

/// Q4_0, four interleaved rows · two activation rows, `[token][row]`, with `smmla`.
///
/// # Safety
/// The CPU must support NEON and i8mm.
#[inline(always)]
unsafe fn dot_q4_0_r4x2_smmla(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] {
    // SAFETY: the caller guarantees NEON and i8mm.
    unsafe {
        // Lanes: [row 0 token 0, row 0 token 1, row 1 token 0, row 1 token 1], and the same
        // for rows 2 and 3.
        let mut out01 = vdupq_n_f32(0.0);
        let mut out23 = vdupq_n_f32(0.0);
        for (b, group) in w.chunks_exact(4).enumerate() {
            let (xb0, xb1) = (&x0[b], &x1[b]);
            let ([low0, high0], [low1, high1]) = (load_act(xb0), load_act(xb1));
            let acts = [zip_halves(low0, low1, false), zip_halves(low0, low1, true), zip_halves(high0, high1, false), zip_halves(high0, high1, true)];
            let mut rows = [[vdupq_n_s8(0); 2]; 4];
            for r in 0..4 {
                rows[r] = unpack_nibbles(&group[r].qs[0]);
            }
            let dots01 = dot_tile(rows[0], rows[1], acts);
            let dots23 = dot_tile(rows[2], rows[3], acts);

            // Scale each lane as `add_q4_0` does: (d_row · d_token) · (dot - 8 · Σx_token).
            let d = scales4([group[0].d, group[1].d, group[2].d, group[3].d]);
            let act_scales = [xb0.d, xb1.d, xb0.d, xb1.d];
            let act_scales = vld1q_f32(act_scales.as_ptr());
            let offsets = [8 * xb0.sum, 8 * xb1.sum, 8 * xb0.sum, 8 * xb1.sum];
            let offsets = vld1q_s32(offsets.as_ptr());
            let scaled01 = vmulq_f32(vmulq_f32(vzip1q_f32(d, d), act_scales), vcvtq_f32_s32(vsubq_s32(dots01, offsets)));
            let scaled23 = vmulq_f32(vmulq_f32(vzip2q_f32(d, d), act_scales), vcvtq_f32_s32(vsubq_s32(dots23, offsets)));
            out01 = vaddq_f32(out01, scaled01);
            out23 = vaddq_f32(out23, scaled23);
        }
        [store4(vuzp1q_f32(out01, out23)), store4(vuzp2q_f32(out01, out23))]
    }
}

kernel_table!(crate::kernels::Isa::I8mm, "neon,dotprod,i8mm", Sdot, dot_q4_0_r4x2_smmla);
