//! Compute kernels and their run-time selection.
//!
//! [`Kernels`] is a table of kernel functions for one instruction set ([`Isa`]). The scalar
//! table is the reference and the fallback of targets without SIMD; SIMD tables exist for
//! x86-64 (AVX2 + FMA + F16C; AVX-512 VNNI) and aarch64 (NEON, NEON with dotprod, NEON with
//! i8mm). A table whose instructions the CPU lacks can never be obtained, so its safe function
//! pointers only run where their instructions exist.
//!
//! [`active`] picks the best table the CPU supports, or the one `TINYLLM_ISA` names (`scalar`,
//! `avx2`, `avx512vnni`, `neon`, `dotprod`, `i8mm`). Naming one the CPU lacks is an error,
//! never a silent fallback.

mod matmul;
pub mod scalar;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use core::fmt;

use half::f16;

pub(crate) use matmul::Output;
pub use matmul::{matmul, Parallel, QuantizedInput, Serial};

use crate::error::{ErrorKind, Result};
use crate::quant::{BlockQ16Act, BlockQ4_0, BlockQ4_0G128, BlockQ4_0G64, BlockQ4_1, BlockQ8Act, BlockQ8_0};

/// An instruction set a kernel table is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, no SIMD intrinsics.
    Scalar,
    /// x86-64 with AVX2, FMA and F16C.
    Avx2,
    /// x86-64 with AVX2, FMA, F16C and AVX-512 F, BW, VL and VNNI (Ice Lake, Sapphire Rapids,
    /// Zen 4 and later).
    Avx512Vnni,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 Advanced SIMD with the dot product extension (`sdot`).
    Dotprod,
    /// aarch64 Advanced SIMD with the int8 matrix multiply extension (`smmla`) and dotprod.
    I8mm,
}

impl Isa {
    /// Every instruction set, from the most portable.
    pub const ALL: [Isa; 6] = [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni, Isa::Neon, Isa::Dotprod, Isa::I8mm];

    /// Returns the name that `TINYLLM_ISA` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
            Isa::I8mm => "i8mm",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Reports whether this CPU can run the instruction set: checked at run time with `std`,
    /// from the compile-time target features without it.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512Vnni => x86_64::supported(self),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::Dotprod | Isa::I8mm => aarch64::supported(self),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Four interleaved weight rows · two activation rows, `[token][row]`.
pub type Dot4x2<B, A> = fn(&[B], &[A], &[A]) -> [[f32; 4]; 2];
/// Four interleaved weight rows · four activation rows, `[token][row]`.
pub type Dot4x4<B, A> = fn(&[B], [&[A]; 4]) -> [[f32; 4]; 4];

/// A table of kernels for one instruction set. Each SIMD kernel computes what its scalar
/// twin in [`scalar`] computes, up to the rounding of f32 sums.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The instruction set of every kernel in the table.
    pub isa: Isa,
    /// Q8_0 weight row · int16 activations.
    pub dot_q8_0: fn(&[BlockQ8_0], &[BlockQ16Act]) -> f32,
    /// Q4_0 weight row · int8 activations.
    pub dot_q4_0: fn(&[BlockQ4_0], &[BlockQ8Act]) -> f32,
    /// Q4_0 (groups of 64) weight row · int8 activations.
    pub dot_q4_0_g64: fn(&[BlockQ4_0G64], &[BlockQ8Act]) -> f32,
    /// Q4_0 (groups of 128) weight row · int8 activations.
    pub dot_q4_0_g128: fn(&[BlockQ4_0G128], &[BlockQ8Act]) -> f32,
    /// Q4_1 weight row · int8 activations.
    pub dot_q4_1: fn(&[BlockQ4_1], &[BlockQ8Act]) -> f32,
    /// Four interleaved Q8_0 rows · int16 activations.
    pub dot_q8_0_r4: fn(&[BlockQ8_0], &[BlockQ16Act]) -> [f32; 4],
    /// Four interleaved Q4_0 rows · int8 activations.
    pub dot_q4_0_r4: fn(&[BlockQ4_0], &[BlockQ8Act]) -> [f32; 4],
    /// Four interleaved Q4_0 (groups of 64) rows · int8 activations.
    pub dot_q4_0_g64_r4: fn(&[BlockQ4_0G64], &[BlockQ8Act]) -> [f32; 4],
    /// Four interleaved Q4_0 (groups of 128) rows · int8 activations.
    pub dot_q4_0_g128_r4: fn(&[BlockQ4_0G128], &[BlockQ8Act]) -> [f32; 4],
    /// Four interleaved Q4_1 rows · int8 activations.
    pub dot_q4_1_r4: fn(&[BlockQ4_1], &[BlockQ8Act]) -> [f32; 4],
    /// Four interleaved Q4_0 rows · two activation rows, `[token][row]`.
    pub dot_q4_0_r4x2: Dot4x2<BlockQ4_0, BlockQ8Act>,
    /// Four interleaved Q8_0 rows · four int16 activation rows, `[token][row]`: the tile of
    /// prompt processing, which unpacks each weight block once for four tokens.
    pub dot_q8_0_r4x4: Dot4x4<BlockQ8_0, BlockQ16Act>,
    /// Four interleaved Q4_0 rows · four int8 activation rows, `[token][row]`.
    pub dot_q4_0_r4x4: Dot4x4<BlockQ4_0, BlockQ8Act>,
    /// Four interleaved Q4_0 (groups of 64) rows · four int8 activation rows, `[token][row]`.
    pub dot_q4_0_g64_r4x4: Dot4x4<BlockQ4_0G64, BlockQ8Act>,
    /// Four interleaved Q4_0 (groups of 128) rows · four int8 activation rows, `[token][row]`.
    pub dot_q4_0_g128_r4x4: Dot4x4<BlockQ4_0G128, BlockQ8Act>,
    /// Four interleaved Q4_1 rows · four int8 activation rows, `[token][row]`.
    pub dot_q4_1_r4x4: Dot4x4<BlockQ4_1, BlockQ8Act>,
    /// f32 · f32.
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    /// f16 · f32.
    pub dot_f16: fn(&[f16], &[f32]) -> f32,
    /// Q8_0 · f32, for keys of a Q8_0 KV cache.
    pub dot_q8_0_f32: fn(&[BlockQ8_0], &[f32]) -> f32,
    /// `y += a * x`.
    pub axpy_f32: fn(f32, &[f32], &mut [f32]),
    /// `y += a * x` with `x` in f16 (the values of an f16 KV cache).
    pub axpy_f16: fn(f32, &[f16], &mut [f32]),
    /// `y += a * x` with `x` in Q8_0 blocks (the values of a Q8_0 KV cache).
    pub axpy_q8_0: fn(f32, &[BlockQ8_0], &mut [f32]),
    /// Attention scores of one head over cached f16 keys (see [`scalar::scores_f16`]).
    pub scores_f16: fn(&[f16], usize, &[f32], &mut [f32]),
    /// Attention output of one head over cached f16 values (see [`scalar::mix_f16`]).
    pub mix_f16: fn(&[f16], usize, &[f32], &mut [f32]),
    /// Attention scores of one head over cached Q8_0 keys (see [`scalar::scores_q8_0`]).
    pub scores_q8_0: fn(&[BlockQ8_0], usize, &[f32], &mut [f32]),
    /// Attention output of one head over cached Q8_0 values (see [`scalar::mix_q8_0`]).
    pub mix_q8_0: fn(&[BlockQ8_0], usize, &[f32], &mut [f32]),
    /// Softmax in place (see [`scalar::softmax`]).
    pub softmax: fn(&mut [f32]),
    /// SwiGLU in place: `gate = silu(gate) * up`.
    pub silu_mul: fn(&mut [f32], &[f32]),
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).finish()
    }
}

/// Two activation rows through a four-row kernel, for tables without a two-token kernel.
fn r4x2_from_r4<B>(dot4: fn(&[B], &[BlockQ8Act]) -> [f32; 4]) -> impl Fn(&[B], &[BlockQ8Act], &[BlockQ8Act]) -> [[f32; 4]; 2] {
    move |w, x0, x1| [dot4(w, x0), dot4(w, x1)]
}

fn scalar_q4_0_r4x2(w: &[BlockQ4_0], x0: &[BlockQ8Act], x1: &[BlockQ8Act]) -> [[f32; 4]; 2] {
    r4x2_from_r4(scalar::dot_q4_0_r4::<1>)(w, x0, x1)
}

/// The scalar reference table.
pub static SCALAR: Kernels = Kernels {
    isa: Isa::Scalar,
    dot_q8_0: scalar::dot_q8_0,
    dot_q4_0: scalar::dot_q4_0::<1>,
    dot_q4_0_g64: scalar::dot_q4_0::<2>,
    dot_q4_0_g128: scalar::dot_q4_0::<4>,
    dot_q4_1: scalar::dot_q4_1,
    dot_q8_0_r4: scalar::dot_q8_0_r4,
    dot_q4_0_r4: scalar::dot_q4_0_r4::<1>,
    dot_q4_0_g64_r4: scalar::dot_q4_0_r4::<2>,
    dot_q4_0_g128_r4: scalar::dot_q4_0_r4::<4>,
    dot_q4_1_r4: scalar::dot_q4_1_r4,
    dot_q4_0_r4x2: scalar_q4_0_r4x2,
    dot_q8_0_r4x4: scalar::dot_q8_0_r4x4,
    dot_q4_0_r4x4: scalar::dot_q4_0_r4x4::<1>,
    dot_q4_0_g64_r4x4: scalar::dot_q4_0_r4x4::<2>,
    dot_q4_0_g128_r4x4: scalar::dot_q4_0_r4x4::<4>,
    dot_q4_1_r4x4: scalar::dot_q4_1_r4x4,
    dot_f32: scalar::dot_f32,
    dot_f16: scalar::dot_f16,
    dot_q8_0_f32: scalar::dot_q8_0_f32,
    axpy_f32: scalar::axpy_f32,
    axpy_f16: scalar::axpy_f16,
    axpy_q8_0: scalar::axpy_q8_0,
    scores_f16: scalar::scores_f16,
    mix_f16: scalar::mix_f16,
    scores_q8_0: scalar::scores_q8_0,
    mix_q8_0: scalar::mix_q8_0,
    softmax: scalar::softmax,
    silu_mul: scalar::silu_mul,
};

/// Returns the table for `isa`, or an error naming it when this CPU (or this build) lacks it.
pub fn for_isa(isa: Isa) -> Result<&'static Kernels> {
    if !isa.is_supported() {
        return Err(ErrorKind::InvalidValue {
            field: "instruction set".into(),
            value: isa.name().into(),
            expected: alloc::format!("one this CPU supports: {}", supported_names()),
        }
        .into());
    }
    let table: Option<&'static Kernels> = match isa {
        Isa::Scalar => Some(&SCALAR),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512Vnni => Some(x86_64::table(isa)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon | Isa::Dotprod | Isa::I8mm => Some(aarch64::table(isa)),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    table.ok_or_else(|| {
        ErrorKind::InvalidValue { field: "instruction set".into(), value: isa.name().into(), expected: "one built for this target".into() }.into()
    })
}

fn supported_names() -> alloc::string::String {
    let names: alloc::vec::Vec<&str> = Isa::ALL.iter().filter(|isa| isa.is_supported()).map(|isa| isa.name()).collect();
    names.join(", ")
}

/// Detects the best instruction set this CPU supports, in the order i8mm, dotprod, NEON,
/// AVX-512 VNNI, AVX2, scalar.
pub fn detect() -> Isa {
    [Isa::I8mm, Isa::Dotprod, Isa::Neon, Isa::Avx512Vnni, Isa::Avx2].into_iter().find(|isa| isa.is_supported()).unwrap_or(Isa::Scalar)
}

/// Selects the kernels to use: those named by `TINYLLM_ISA` when it is set (with `std`), else
/// the best the CPU supports. The choice is made once per process.
pub fn active() -> Result<&'static Kernels> {
    #[cfg(feature = "std")]
    {
        static ACTIVE: std::sync::OnceLock<Result<&'static Kernels>> = std::sync::OnceLock::new();
        ACTIVE
            .get_or_init(|| match std::env::var("TINYLLM_ISA") {
                // An empty value counts as unset, as for most environment variables.
                Ok(name) if name.trim().is_empty() => for_isa(detect()),
                Ok(name) => match Isa::from_name(name.trim()) {
                    Some(isa) => for_isa(isa).map_err(|_| {
                        ErrorKind::InvalidValue {
                            field: "TINYLLM_ISA".into(),
                            value: name.clone(),
                            expected: alloc::format!("an instruction set this CPU supports: {}; or unset it to detect the best", supported_names()),
                        }
                        .into()
                    }),
                    None => Err(ErrorKind::InvalidValue {
                        field: "TINYLLM_ISA".into(),
                        value: name.clone(),
                        expected: "scalar, avx2, avx512vnni, neon, dotprod or i8mm".into(),
                    }
                    .into()),
                },
                Err(_) => for_isa(detect()),
            })
            .clone()
    }
    #[cfg(not(feature = "std"))]
    {
        for_isa(detect())
    }
}
