//! The NEON + dotprod table, and its signed 8-bit dot product `sdot`.

use core::arch::aarch64::*;
use core::arch::asm;

use super::quant::Int8Dot;

/// Signed 8-bit dot product with `sdot`: lane `i` of the accumulator gains the four products
/// of bytes `4i..4i + 4`.
///
/// `sdot` is written with `asm!` because its intrinsic `vdotq_s32` is unstable in Rust 1.96
/// (`stdarch_neon_dotprod`). The assembler accepts the instruction only inside a function
/// compiled with the `dotprod` feature, so every caller up to the `#[target_feature]`
/// instance must be `#[inline(always)]`: a closure or an outlined call between them fails the
/// build with "instruction requires: dotprod".
pub(super) struct Sdot;

impl Int8Dot for Sdot {
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: the caller guarantees the dotprod extension. `sdot` reads only its three
        // vector registers and writes only the accumulator, which is `inout`. It touches no
        // memory, stack or flags.
        unsafe {
            asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }
}

kernel_table!(crate::kernels::Isa::Dotprod, "neon,dotprod", Sdot, super::quant::dot_q4_0_r4x2::<Sdot>);
