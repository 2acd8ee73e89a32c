//! x86-64 kernels: the AVX2 table (AVX2 + FMA + F16C) and the AVX-512 VNNI table.
//!
//! Each kernel body is an `#[inline(always)]` generic function, instantiated once per table
//! entry by a thin `#[target_feature(enable = ...)] unsafe fn`. The tables store safe wrappers
//! around those, which is sound because a table is only handed out by `for_isa` after
//! [`supported`] returned true for its instruction set. Block kernels of the AVX2 table live
//! in [`quant_dot`], float kernels in [`float`], the multi-token kernels of the AVX-512 VNNI
//! table in [`vnni`].
//!
//! Every AVX2 kernel returns exactly what its scalar twin returns, bit for bit: the f32
//! operations are the scalar twin's, in its order, and only the exact integer work is
//! reordered. `kernels_vs_scalar` checks this. Greedy decoding therefore picks the same tokens
//! with this table as with the scalar one. For that reason no AVX2 kernel uses FMA, although
//! the table requires it as part of [`Isa::Avx2`]. The AVX-512 VNNI table gives that up for
//! its prompt-processing kernels, which use FMA and sum in another order.
#![deny(unsafe_op_in_unsafe_fn)]

mod float;
mod quant_dot;
mod vnni;

use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};

use half::f16;

use super::{Isa, Kernels};
use crate::quant::{BlockQ16Act, BlockQ4_0, BlockQ4_0G128, BlockQ4_0G64, BlockQ4_1, BlockQ8Act, BlockQ8_0};

/// How far ahead of the weights being read the interleaved-row kernels prefetch into L1.
const PREFETCH_L1: usize = 2048;
/// How far ahead they prefetch into L2. Decode reads each weight once, so without these hints
/// it waits on memory: on the Xeon of docs/benchmarks.md they raised SmolLM2-135M decode from
/// 75 to about 140 tokens/s with 1 thread.
const PREFETCH_L2: usize = 16384;

/// Prefetches the cache lines `PREFETCH_L1` and `PREFETCH_L2` bytes past the start of `group`,
/// as many as `group` covers plus one.
#[inline(always)]
fn prefetch_ahead<B>(group: &[B]) {
    let start = group.as_ptr() as *const i8;
    for line in 0..core::mem::size_of_val(group).div_ceil(64) + 1 {
        // SAFETY: SSE is part of x86-64. A prefetch is a hint that never faults and reads
        // nothing into the program, so an address past the end of the weights is harmless.
        // `wrapping_add` computes such an address without the in-bounds requirement of `add`.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(PREFETCH_L1 + 64 * line));
            _mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(PREFETCH_L2 + 64 * line));
        }
    }
}

/// Reports whether the CPU has AVX2, FMA and F16C, and for [`Isa::Avx512Vnni`] also
/// AVX-512F, BW, VL and VNNI.
pub(super) fn supported(isa: Isa) -> bool {
    #[cfg(feature = "std")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c");
        let avx512_vnni = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni");
        match isa {
            Isa::Avx2 => avx2,
            Isa::Avx512Vnni => avx2 && avx512_vnni,
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let avx2 = cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"));
        let avx512_vnni = cfg!(all(target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vl", target_feature = "avx512vnni"));
        match isa {
            Isa::Avx2 => avx2,
            Isa::Avx512Vnni => avx2 && avx512_vnni,
            _ => false,
        }
    }
}

/// Returns the table of `isa`. Only reachable through `for_isa`, which checks `supported`
/// first.
pub(super) fn table(isa: Isa) -> &'static Kernels {
    match isa {
        Isa::Avx512Vnni => &AVX512_VNNI,
        _ => avx2(),
    }
}

/// The AVX-512 VNNI table: the AVX2 table with the multi-token kernels of Q4_0 and Q4_1
/// replaced by those of [`vnni`], which accumulate in f32 lanes instead of repeating the scalar
/// order. On the Xeon of docs/benchmarks.md they raised prompt processing by 19% for the
/// Qwen2.5-0.5B shape at Q4_0 and 5% for SmolLM2-135M at Q4_1; for one token and for Q8_0 the
/// AVX2 kernels measured faster and stay.
static AVX512_VNNI: Kernels = Kernels {
    isa: Isa::Avx512Vnni,
    dot_q4_0_r4x2: vnni_dot_q4_0_r4x2,
    dot_q4_0_r4x4: vnni_dot_q4_0_r4x4,
    dot_q4_1_r4x4: vnni_dot_q4_1_r4x4,
    ..AVX2
};

/// Defines safe functions for the AVX-512 VNNI table, each calling one `#[target_feature]`
/// kernel.
macro_rules! vnni_entries {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $kernel:path;)*) => {$(
        fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: these functions are stored only in the AVX-512 VNNI table, and `for_isa`
            // returns that table only after `supported(Isa::Avx512Vnni)` found AVX2, FMA,
            // F16C, AVX-512F, BW, VL and VNNI on this CPU.
            unsafe { $kernel($($arg),*) }
        }
    )*};
}

vnni_entries! {
    fn vnni_dot_q4_0_r4x2(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] = vnni::dot_q4_0_r4x2_pair;
    fn vnni_dot_q4_0_r4x4(w: &[BlockQ4_0], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = vnni::dot_q4_0_r4x4;
    fn vnni_dot_q4_1_r4x4(w: &[BlockQ4_1], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = vnni::dot_q4_1_r4x4;
}

/// Returns the AVX2 table. Only reachable through `table`, which `for_isa` calls after
/// `supported`.
fn avx2() -> &'static Kernels {
    &AVX2
}

/// The AVX2 table, bit-identical to the scalar one.
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
    dot_q8_0_r4x4,
    dot_q4_0_r4x4,
    dot_q4_0_g64_r4x4,
    dot_q4_0_g128_r4x4,
    dot_q4_1_r4x4,
    dot_f32,
    dot_f16,
    dot_q8_0_f32,
    axpy_f32,
    axpy_f16,
    axpy_q8_0,
    scores_f16,
    mix_f16,
    scores_q8_0,
    mix_q8_0,
    softmax,
    silu_mul,
};

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
    fn dot_q8_0_r4x4(w: &[BlockQ8_0], x: [&[BlockQ16Act]; 4]) -> [[f32; 4]; 4] = quant_dot::dot_q8_0_r4x4;
    fn dot_q4_0_r4x4(w: &[BlockQ4_0], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = quant_dot::dot_q4_0_r4x4;
    fn dot_q4_0_g64_r4x4(w: &[BlockQ4_0G64], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = quant_dot::dot_q4_0_g64_r4x4;
    fn dot_q4_0_g128_r4x4(w: &[BlockQ4_0G128], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = quant_dot::dot_q4_0_g128_r4x4;
    fn dot_q4_1_r4x4(w: &[BlockQ4_1], x: [&[BlockQ8Act]; 4]) -> [[f32; 4]; 4] = quant_dot::dot_q4_1_r4x4;
    fn dot_f32(a: &[f32], b: &[f32]) -> f32 = float::dot_f32;
    fn dot_f16(a: &[f16], b: &[f32]) -> f32 = float::dot_f16;
    fn axpy_f32(a: f32, x: &[f32], y: &mut [f32]) -> () = float::axpy_f32;
    fn axpy_f16(a: f32, x: &[f16], y: &mut [f32]) -> () = float::axpy_f16;
    fn silu_mul(gate: &mut [f32], up: &[f32]) -> () = float::silu_mul;
    fn softmax(x: &mut [f32]) -> () = float::softmax;
    fn dot_q8_0_f32(w: &[BlockQ8_0], x: &[f32]) -> f32 = float::dot_q8_0_f32;
    fn axpy_q8_0(a: f32, x: &[BlockQ8_0], y: &mut [f32]) -> () = float::axpy_q8_0;
    fn scores_f16(keys: &[f16], stride: usize, q: &[f32], out: &mut [f32]) -> () = float::scores_f16;
    fn mix_f16(values: &[f16], stride: usize, weights: &[f32], out: &mut [f32]) -> () = float::mix_f16;
    fn scores_q8_0(keys: &[BlockQ8_0], stride: usize, q: &[f32], out: &mut [f32]) -> () = float::scores_q8_0;
    fn mix_q8_0(values: &[BlockQ8_0], stride: usize, weights: &[f32], out: &mut [f32]) -> () = float::mix_q8_0;
}
