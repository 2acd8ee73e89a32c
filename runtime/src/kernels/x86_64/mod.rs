//! x86-64 kernels (AVX2 + FMA + F16C).
//!
//! Each kernel body is an `#[inline(always)]` generic function, instantiated once per table
//! entry by a thin `#[target_feature(enable = "avx2,fma,f16c")] unsafe fn`. The table stores
//! safe wrappers around those, which is sound because the table is only handed out by
//! `for_isa` after [`supported`] returned true. Block kernels live in [`quant_dot`], float
//! kernels in [`float`].
//!
//! Every kernel returns exactly what its scalar twin returns, bit for bit: the f32 operations
//! are the scalar twin's, in its order, and only the exact integer work is reordered.
//! `kernels_vs_scalar` checks this. Greedy decoding therefore picks the same tokens with
//! this table as with the scalar one. For that reason no kernel uses FMA, although the table
//! requires it as part of [`Isa::Avx2`].
#![deny(unsafe_op_in_unsafe_fn)]

mod float;
mod quant_dot;

use half::f16;

use super::{Isa, Kernels};
use crate::quant::{BlockQ16Act, BlockQ4_0, BlockQ4_0G128, BlockQ4_0G64, BlockQ4_1, BlockQ8Act, BlockQ8_0};

/// Whether the CPU has AVX2, FMA and F16C.
pub(super) fn supported() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
    }
}

/// The AVX2 table. Only reachable through `for_isa`, which checks `supported` first.
pub(super) fn table() -> &'static Kernels {
    static AVX2: Kernels = Kernels {
        isa: Isa::Avx2,
        dot_q8_0,
        dot_q4_0,
        dot_q4_0_g64,
        dot_q4_0_g128,
        dot_q4_1,
        dot_q8_0_r4,
        dot_q4_0_r4,
        dot_q4_0_g64_r4,
        dot_q4_0_g128_r4,
        dot_q4_1_r4,
        dot_q4_0_r4x2,
        dot_f32,
        dot_f16,
        axpy_f32,
        axpy_f16,
        // SwiGLU stays scalar, because `libm::expf` is what makes it bit-identical. A vectorized
        // e^x within 1 ulp of it made `silu_mul` about 8 times faster (an estimated 4% of a
        // SmolLM2-135M decode step), but it moved that model's Q4_0 logits by about 0.1.
        silu_mul: super::scalar::silu_mul,
    };
    &AVX2
}

/// Defines safe functions for the AVX2 table, each calling one `#[target_feature]` kernel.
macro_rules! table_entries {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $kernel:path;)*) => {$(
        fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: these functions are stored only in the AVX2 table, and `for_isa` returns
            // that table only after `supported()` found AVX2, FMA and F16C on this CPU.
            unsafe { $kernel($($arg),*) }
        }
    )*};
}

table_entries! {
    fn dot_q8_0(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> f32 = quant_dot::dot_q8_0;
    fn dot_q4_0(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> f32 = quant_dot::dot_q4_0;
    fn dot_q4_0_g64(w: &[BlockQ4_0G64], x: &[BlockQ8Act]) -> f32 = quant_dot::dot_q4_0_g64;
    fn dot_q4_0_g128(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> f32 = quant_dot::dot_q4_0_g128;
    fn dot_q4_1(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> f32 = quant_dot::dot_q4_1;
    fn dot_q8_0_r4(w: &[BlockQ8_0], x: &[BlockQ16Act]) -> [f32; 4] = quant_dot::dot_q8_0_r4;
    fn dot_q4_0_r4(w: &[BlockQ4_0], x: &[BlockQ8Act]) -> [f32; 4] = quant_dot::dot_q4_0_r4;
    fn dot_q4_0_g64_r4(w: &[BlockQ4_0G64], x: &[BlockQ8Act]) -> [f32; 4] = quant_dot::dot_q4_0_g64_r4;
    fn dot_q4_0_g128_r4(w: &[BlockQ4_0G128], x: &[BlockQ8Act]) -> [f32; 4] = quant_dot::dot_q4_0_g128_r4;
    fn dot_q4_1_r4(w: &[BlockQ4_1], x: &[BlockQ8Act]) -> [f32; 4] = quant_dot::dot_q4_1_r4;
    fn dot_q4_0_r4x2(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] = quant_dot::dot_q4_0_r4x2;
    fn dot_f32(a: &[f32], b: &[f32]) -> f32 = float::dot_f32;
    fn dot_f16(a: &[f16], b: &[f32]) -> f32 = float::dot_f16;
    fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) -> () = float::axpy_f32;
    fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) -> () = float::axpy_f16;
}
