//! aarch64 kernels: NEON, NEON with dotprod (`sdot`), NEON with i8mm (`smmla`).
//!
//! Each kernel body is an `#[inline(always)]` generic function written once. The quantized ones
//! in `quant` are generic over `quant::Int8Dot`, the signed 8-bit dot product in which the
//! instruction sets differ: `neon::Neon` widens and adds pairwise, `dotprod::Sdot` uses `sdot`.
//! The float ones in `float` are the same for every table. `kernel_table!` instantiates every
//! body through a thin `#[target_feature]` function and stores a safe wrapper around it in the
//! table of its instruction set. The i8mm table differs from the dotprod one only in its
//! two-token kernel, which multiplies 2x8 by 8x2 int8 tiles with `smmla` (module `i8mm`).
//!
//! Intrinsics come from `core::arch::aarch64`. `sdot` and `smmla` are written with `asm!`
//! because their intrinsics (`vdotq_s32`, `vmmlaq_s32`) are unstable in Rust 1.96
//! (`stdarch_neon_dotprod`, `stdarch_neon_i8mm`). The f16 to f32 conversion (`fcvtl`) is
//! `asm!` too: its intrinsic `vcvt_f32_f16` and the `float16x4_t` type are stable only since
//! Rust 1.94, above the workspace's `rust-version` of 1.89.
#![deny(unsafe_op_in_unsafe_fn)]

use super::{Isa, Kernels};

/// Defines `TABLE`, the kernel table of one instruction set.
///
/// Arguments: the `Isa`, the target features as a `#[target_feature(enable = ...)]` string,
/// the `quant::Int8Dot` of the quantized kernels and the path of the two-token kernel. Every
/// entry is a safe function that calls a thin `#[target_feature]` instantiation of a body.
macro_rules! kernel_table {
    ($isa:expr, $features:literal, $dot:ty, $dot_q4_0_r4x2:path) => {
        kernel_table!(@entries $features;
            dot_q8_0(w: &[$crate::quant::BlockQ8_0], x: &[$crate::quant::BlockQ16Act]) -> f32
                = super::quant::dot_q8_0(w, x);
            dot_q4_0(w: &[$crate::quant::BlockQ4_0], x: &[$crate::quant::BlockQ8Act]) -> f32
                = super::quant::dot_q4_0::<$dot, 1>(w, x);
            dot_q4_0_g64(w: &[$crate::quant::BlockQ4_0G64], x: &[$crate::quant::BlockQ8Act]) -> f32
                = super::quant::dot_q4_0::<$dot, 2>(w, x);
            dot_q4_0_g128(w: &[$crate::quant::BlockQ4_0G128], x: &[$crate::quant::BlockQ8Act]) -> f32
                = super::quant::dot_q4_0::<$dot, 4>(w, x);
            dot_q4_1(w: &[$crate::quant::BlockQ4_1], x: &[$crate::quant::BlockQ8Act]) -> f32
                = super::quant::dot_q4_1::<$dot>(w, x);
            dot_q8_0_r4(w: &[$crate::quant::BlockQ8_0], x: &[$crate::quant::BlockQ16Act]) -> [f32; 4]
                = super::quant::dot_q8_0_r4(w, x);
            dot_q4_0_r4(w: &[$crate::quant::BlockQ4_0], x: &[$crate::quant::BlockQ8Act]) -> [f32; 4]
                = super::quant::dot_q4_0_r4::<$dot, 1>(w, x);
            dot_q4_0_g64_r4(w: &[$crate::quant::BlockQ4_0G64], x: &[$crate::quant::BlockQ8Act]) -> [f32; 4]
                = super::quant::dot_q4_0_r4::<$dot, 2>(w, x);
            dot_q4_0_g128_r4(w: &[$crate::quant::BlockQ4_0G128], x: &[$crate::quant::BlockQ8Act]) -> [f32; 4]
                = super::quant::dot_q4_0_r4::<$dot, 4>(w, x);
            dot_q4_1_r4(w: &[$crate::quant::BlockQ4_1], x: &[$crate::quant::BlockQ8Act]) -> [f32; 4]
                = super::quant::dot_q4_1_r4::<$dot>(w, x);
            dot_q4_0_r4x2(w: &[$crate::quant::BlockQ4_0], x0: &[$crate::quant::BlockQ8Act], x1: &[$crate::quant::BlockQ8Act]) -> [[f32; 4]; 2]
                = $dot_q4_0_r4x2(w, x0, x1);
            dot_q8_0_r4x4(w: &[$crate::quant::BlockQ8_0], x: [&[$crate::quant::BlockQ16Act]; 4]) -> [[f32; 4]; 4]
                = [super::quant::dot_q8_0_r4(w, x[0]), super::quant::dot_q8_0_r4(w, x[1]), super::quant::dot_q8_0_r4(w, x[2]), super::quant::dot_q8_0_r4(w, x[3])];
            dot_q4_0_r4x4(w: &[$crate::quant::BlockQ4_0], x: [&[$crate::quant::BlockQ8Act]; 4]) -> [[f32; 4]; 4]
                = {
                    let [t0, t1] = $dot_q4_0_r4x2(w, x[0], x[1]);
                    let [t2, t3] = $dot_q4_0_r4x2(w, x[2], x[3]);
                    [t0, t1, t2, t3]
                };
            dot_q4_0_g64_r4x4(w: &[$crate::quant::BlockQ4_0G64], x: [&[$crate::quant::BlockQ8Act]; 4]) -> [[f32; 4]; 4]
                = [
                    super::quant::dot_q4_0_r4::<$dot, 2>(w, x[0]),
                    super::quant::dot_q4_0_r4::<$dot, 2>(w, x[1]),
                    super::quant::dot_q4_0_r4::<$dot, 2>(w, x[2]),
                    super::quant::dot_q4_0_r4::<$dot, 2>(w, x[3]),
                ];
            dot_q4_0_g128_r4x4(w: &[$crate::quant::BlockQ4_0G128], x: [&[$crate::quant::BlockQ8Act]; 4]) -> [[f32; 4]; 4]
                = [
                    super::quant::dot_q4_0_r4::<$dot, 4>(w, x[0]),
                    super::quant::dot_q4_0_r4::<$dot, 4>(w, x[1]),
                    super::quant::dot_q4_0_r4::<$dot, 4>(w, x[2]),
                    super::quant::dot_q4_0_r4::<$dot, 4>(w, x[3]),
                ];
            dot_q4_1_r4x4(w: &[$crate::quant::BlockQ4_1], x: [&[$crate::quant::BlockQ8Act]; 4]) -> [[f32; 4]; 4]
                = [
                    super::quant::dot_q4_1_r4::<$dot>(w, x[0]),
                    super::quant::dot_q4_1_r4::<$dot>(w, x[1]),
                    super::quant::dot_q4_1_r4::<$dot>(w, x[2]),
                    super::quant::dot_q4_1_r4::<$dot>(w, x[3]),
                ];
            dot_f32(a: &[f32], b: &[f32]) -> f32 = super::float::dot_f32(a, b);
            dot_f16(a: &[half::f16], b: &[f32]) -> f32 = super::float::dot_f16(a, b);
            axpy_f32(a: f32, x: &[f32], y: &mut [f32]) -> () = super::float::axpy_f32(a, x, y);
            axpy_f16(a: f32, x: &[half::f16], y: &mut [f32]) -> () = super::float::axpy_f16(a, x, y);
            scores_f16(keys: &[half::f16], stride: usize, q: &[f32], out: &mut [f32]) -> () = super::float::scores_f16(keys, stride, q, out);
            mix_f16(values: &[half::f16], stride: usize, weights: &[f32], out: &mut [f32]) -> () = super::float::mix_f16(values, stride, weights, out);
            silu_mul(gate: &mut [f32], up: &[f32]) -> () = super::float::silu_mul(gate, up);
        );

        /// The kernel table of this instruction set.
        pub(super) static TABLE: $crate::kernels::Kernels = $crate::kernels::Kernels {
            isa: $isa,
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
            dot_q8_0_r4x4,
            dot_q4_0_r4x4,
            dot_q4_0_g64_r4x4,
            dot_q4_0_g128_r4x4,
            dot_q4_1_r4x4,
            dot_f32,
            dot_f16,
            // The Q8_0 KV cache kernels and softmax have no NEON version yet: the scalar ones.
            dot_q8_0_f32: $crate::kernels::scalar::dot_q8_0_f32,
            axpy_f32,
            axpy_f16,
            axpy_q8_0: $crate::kernels::scalar::axpy_q8_0,
            scores_f16,
            mix_f16,
            scores_q8_0: $crate::kernels::scalar::scores_q8_0,
            mix_q8_0: $crate::kernels::scalar::mix_q8_0,
            softmax: $crate::kernels::scalar::softmax,
            silu_mul,
        };
    };
    (@entries $features:literal; $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:expr;)*) => {$(
        fn $name($($arg: $ty),*) -> $ret {
            /// Runs the kernel body compiled with the table's target features.
            ///
            /// # Safety
            /// The CPU must support the table's target features.
            #[target_feature(enable = $features)]
            unsafe fn instance($($arg: $ty),*) -> $ret {
                // SAFETY: the caller guarantees the target features, which are all the body
                // requires; the body checks its slice lengths itself.
                unsafe { $body }
            }
            // SAFETY: this function is stored only in `TABLE`, which `table` hands out only to
            // `for_isa`, and `for_isa` returns it only after `supported` found the table's
            // target features on this CPU (`is_aarch64_feature_detected!` with std, the
            // compile-time target features without).
            unsafe { instance($($arg),*) }
        }
    )*};
}

mod dotprod;
mod float;
mod i8mm;
mod neon;
mod quant;

/// Whether the CPU has the extensions of `isa`.
pub(super) fn supported(isa: Isa) -> bool {
    #[cfg(feature = "std")]
    {
        match isa {
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            Isa::Dotprod => std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod"),
            Isa::I8mm => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
                    && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        match isa {
            Isa::Neon => cfg!(target_feature = "neon"),
            Isa::Dotprod => cfg!(all(target_feature = "neon", target_feature = "dotprod")),
            Isa::I8mm => cfg!(all(target_feature = "neon", target_feature = "dotprod", target_feature = "i8mm")),
            _ => false,
        }
    }
}

/// The table of `isa`. Only reachable through `for_isa`, which checks `supported` first.
pub(super) fn table(isa: Isa) -> &'static Kernels {
    match isa {
        Isa::Dotprod => &dotprod::TABLE,
        Isa::I8mm => &i8mm::TABLE,
        _ => &neon::TABLE,
    }
}
