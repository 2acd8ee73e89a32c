//! The NEON table, and the signed 8-bit dot product of plain NEON.

use core::arch::aarch64::*;

use super::quant::Int8Dot;

/// Signed 8-bit dot product with widening multiplies (`smull`, `smull2`) and pairwise
/// add-accumulates into i32 (`sadalp`). A product is at most 128 · 128 = 2^14 in magnitude,
/// so the i16 products are exact.
pub(super) struct Neon;

impl Int8Dot for Neon {
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: the caller guarantees NEON.
        unsafe {
            let low = vmull_s8(vget_low_s8(a), vget_low_s8(b));
            let high = vmull_high_s8(a, b);
            vpadalq_s16(vpadalq_s16(acc, low), high)
        }
    }
}

kernel_table!(crate::kernels::Isa::Neon, "neon", Neon, super::quant::dot_q4_0_r4x2::<Neon>);
