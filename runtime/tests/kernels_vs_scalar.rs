//! Every SIMD kernel table against the scalar table: each kernel on random blocks with extreme
//! values and odd lengths, and `matmul` on matrices whose rows are not a multiple of the
//! interleave.
//!
//! Tolerance: a SIMD kernel computes the same exact integer sum per 32-weight sub-block as its
//! scalar twin and differs only in the rounding and order of its f32 operations. The two
//! results must therefore agree within `TOLERANCE` (1e-5) times the sum of the absolute values
//! of the products the kernel adds up: `Σ|w_i·x_i|` over dequantized values, and for Q4_1 the
//! `d·q·x` and `m·x` products separately. A row here has at most 132 sub-blocks (33 blocks of
//! 128), so f32 rounding, at most about `(n + 2) · 2^-24` of that sum for `n` terms, stays
//! below 1e-5 of it. Element-wise kernels (`axpy_f32`, `axpy_f16`, `silu_mul`) are held to the same
//! relative bound per element. Tables in `BIT_IDENTICAL` promise more, the scalar result bit
//! for bit, and are checked for it.
//!
//! The tables tested are those this CPU supports other than scalar; with `TINYLLM_ISA` set,
//! exactly the table it names, and the run fails when that table is unavailable.

use bytemuck::Zeroable;
use half::f16;
use tinyllm::kernels::{self, matmul, Isa, Kernels, QuantizedInput, Serial};
use tinyllm::quant::{
    block_index, quantize_activations, quantize_activations_16, quantize_matrix, BlockQ16Act, BlockQ4_0G, BlockQ4_1, BlockQ8Act, BlockQ8_0, QuantFormat, QuantType, INTERLEAVES,
    QK,
};
use tinyllm::tensor::{Matrix, TensorData};

/// Relative tolerance between a SIMD kernel and its scalar twin (see the module comment).
const TOLERANCE: f64 = 1e-5;

/// Tables that repeat the scalar f32 operations in the scalar order, so that every result
/// equals the scalar one bit for bit.
const BIT_IDENTICAL: [Isa; 1] = [Isa::Avx2];

/// Absolute tolerance for results in the f32 subnormal range, where a rounding step
/// (2^-149, about 1.4e-45) is no longer relative to the value: about 700 such steps.
const SUBNORMAL_TOLERANCE: f64 = 1e-42;

/// Weight blocks per row in the kernel tests.
const BLOCK_COUNTS: [usize; 5] = [1, 3, 7, 17, 33];

/// Random trials per block count.
const TRIALS: u64 = 20;

/// Vector lengths of the float kernel tests: below, at and around multiples of 8 and 32.
const FLOAT_LENGTHS: [usize; 9] = [0, 1, 7, 8, 9, 31, 33, 100, 257];

const MATMUL_ROWS: [usize; 6] = [1, 3, 5, 7, 9, 13];
const MATMUL_COLS: [usize; 4] = [32, 96, 200, 257];
/// Token counts: below, at and past the four-token tile of the kernels, and past the 64-token
/// tile of `matmul`.
const MATMUL_TOKENS: [usize; 6] = [1, 2, 3, 4, 7, 70];

/// Returns the tables under test: with `TINYLLM_ISA` set exactly that one, else every
/// supported table other than scalar.
fn simd_tables() -> Vec<&'static Kernels> {
    match std::env::var("TINYLLM_ISA") {
        Ok(name) => {
            let isa = Isa::from_name(name.trim()).unwrap_or_else(|| panic!("TINYLLM_ISA={name} is not an instruction set"));
            let table = kernels::for_isa(isa).unwrap_or_else(|e| panic!("TINYLLM_ISA={name} cannot be tested on this CPU: {e}"));
            assert_eq!(table.isa, isa, "for_isa({isa}) returned the {} table", table.isa);
            vec![table]
        }
        Err(_) => {
            let tables: Vec<_> = Isa::ALL
                .into_iter()
                .filter(|&isa| isa != Isa::Scalar && isa.is_supported())
                .map(|isa| kernels::for_isa(isa).unwrap_or_else(|e| panic!("{isa} is supported but has no table: {e}")))
                .collect();
            if tables.is_empty() {
                eprintln!("this CPU supports no SIMD kernel table, so nothing is compared");
            }
            tables
        }
    }
}

/// Fails unless `got`, from the table of `isa`, is within `TOLERANCE · terms` (plus
/// `SUBNORMAL_TOLERANCE`) of the scalar result `want`, and equal to it bit for bit where `isa`
/// is in `BIT_IDENTICAL`.
fn assert_close(isa: Isa, got: f32, want: f32, terms: f64, what: &dyn Fn() -> String) {
    let difference = (f64::from(got) - f64::from(want)).abs();
    assert!(difference <= TOLERANCE * terms + SUBNORMAL_TOLERANCE, "{}: SIMD {got} vs scalar {want}, difference {difference:e} above {TOLERANCE:e} × Σ|terms| {terms:e}", what());
    if BIT_IDENTICAL.contains(&isa) {
        assert_eq!(got.to_bits(), want.to_bits(), "{}: SIMD {got} vs scalar {want} differ in their bits", what());
    }
}

/// xorshift64* generator: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Draws a value of either sign whose magnitude spans several decades.
    fn wide(&mut self) -> f32 {
        self.unit() * 10f32.powi(self.below(7) as i32 - 3)
    }

    /// Draws a weight scale as f16 bytes: ordinary, negative, zero, subnormal or near the f16
    /// maximum.
    fn f16_scale(&mut self) -> [u8; 2] {
        let value = match self.below(10) {
            0 => f16::ZERO,
            1 => f16::from_bits((1 + self.below(0x3FF) as u16) | ((self.below(2) as u16) << 15)),
            2 => f16::from_f32(60000.0 + 5504.0 * self.unit()),
            3 => -f16::from_f32(0.1 + self.unit().abs()),
            _ => f16::from_f32(self.unit() * 0.1),
        };
        value.to_bits().to_le_bytes()
    }

    /// Draws an activation scale, never negative because it is `max|x| / 127` or `/ 32767`.
    fn act_scale(&mut self) -> f32 {
        match self.below(10) {
            0 => 0.0,
            1 => 1e-30 * self.unit().abs(),
            2 => 10.0 + self.unit(),
            _ => self.unit().abs() * 0.05,
        }
    }

    /// Picks how a block's values are drawn: 0 all minimum, 1 all maximum, 2 minimum and
    /// maximum mixed, otherwise uniform.
    fn block_mode(&mut self) -> u64 {
        self.below(8)
    }

    fn extreme_or<T>(&mut self, mode: u64, min: T, max: T, uniform: impl FnOnce(&mut Rng) -> T) -> T {
        match mode {
            0 => min,
            1 => max,
            2 => {
                if self.below(2) == 0 {
                    min
                } else {
                    max
                }
            }
            _ => uniform(self),
        }
    }

    fn i8_values(&mut self) -> [i8; QK] {
        let mode = self.block_mode();
        core::array::from_fn(|_| self.extreme_or(mode, -128, 127, |r| r.next() as i8))
    }

    fn i16_values(&mut self) -> [i16; QK] {
        let mode = self.block_mode();
        core::array::from_fn(|_| self.extreme_or(mode, -32767, 32767, |r| (r.below(65535) as i32 - 32767) as i16))
    }

    fn nibbles(&mut self) -> [u8; QK / 2] {
        let mode = self.block_mode();
        core::array::from_fn(|_| {
            let low = self.extreme_or(mode, 0, 15, |r| r.below(16) as u8);
            let high = self.extreme_or(mode, 0, 15, |r| r.below(16) as u8);
            low | high << 4
        })
    }

    fn q8_act(&mut self) -> BlockQ8Act {
        let qs = self.i8_values();
        BlockQ8Act { d: self.act_scale(), sum: qs.iter().map(|&q| i32::from(q)).sum(), qs }
    }

    fn q16_act(&mut self) -> BlockQ16Act {
        BlockQ16Act { d: self.act_scale(), qs: self.i16_values() }
    }
}

/// A one-row kernel.
type Dot<B, A> = fn(&[B], &[A]) -> f32;
/// A four-row kernel.
type Dot4<B, A> = fn(&[B], &[A]) -> [f32; 4];
/// A four-row, four-token kernel.
type Dot4x4<B, A> = fn(&[B], [&[A]; 4]) -> [[f32; 4]; 4];

/// A weight format under test: how to make random blocks, the kernels that read it, and the
/// absolute products one sub-block adds up.
trait Format {
    type Block: Copy + Zeroable + bytemuck::Pod;
    type Act: Copy;
    /// Activation blocks per weight block.
    const SUBBLOCKS: usize;
    const NAME: &'static str;
    const QUANT: QuantFormat;

    fn random_block(rng: &mut Rng) -> Self::Block;
    fn random_act(rng: &mut Rng) -> Self::Act;
    /// `Σ|products|` of sub-block `sub` of `w` against `x`, from the dequantized values.
    fn terms(w: &Self::Block, sub: usize, x: &Self::Act) -> f64;
    fn dot(k: &Kernels) -> Dot<Self::Block, Self::Act>;
    fn dot_r4(k: &Kernels) -> Dot4<Self::Block, Self::Act>;
    fn dot_r4x4(k: &Kernels) -> Dot4x4<Self::Block, Self::Act>;
    /// Quantizes `n` rows of `cols` inputs as `matmul` does, `stride` blocks per row.
    fn quantize(x: &[f32], n: usize, cols: usize, stride: usize) -> Vec<Self::Act>;
}

fn f16_value(bytes: [u8; 2]) -> f64 {
    f64::from(f16::from_le_bytes(bytes).to_f32())
}

struct Q8_0;
struct Q4_0<const S: usize>;
struct Q4_1;

impl Format for Q8_0 {
    type Block = BlockQ8_0;
    type Act = BlockQ16Act;
    const SUBBLOCKS: usize = 1;
    const NAME: &'static str = "q8_0";
    const QUANT: QuantFormat = QuantFormat::Q8_0;

    fn random_block(rng: &mut Rng) -> BlockQ8_0 {
        BlockQ8_0 { d: rng.f16_scale(), qs: rng.i8_values() }
    }

    fn random_act(rng: &mut Rng) -> BlockQ16Act {
        rng.q16_act()
    }

    fn terms(w: &BlockQ8_0, _sub: usize, x: &BlockQ16Act) -> f64 {
        let products: f64 = w.qs.iter().zip(&x.qs).map(|(&a, &b)| (f64::from(a) * f64::from(b)).abs()).sum();
        (f16_value(w.d) * f64::from(x.d)).abs() * products
    }

    fn dot(k: &Kernels) -> fn(&[BlockQ8_0], &[BlockQ16Act]) -> f32 {
        k.dot_q8_0
    }

    fn dot_r4(k: &Kernels) -> fn(&[BlockQ8_0], &[BlockQ16Act]) -> [f32; 4] {
        k.dot_q8_0_r4
    }

    fn dot_r4x4(k: &Kernels) -> Dot4x4<BlockQ8_0, BlockQ16Act> {
        k.dot_q8_0_r4x4
    }

    fn quantize(x: &[f32], n: usize, cols: usize, stride: usize) -> Vec<BlockQ16Act> {
        let mut out = vec![BlockQ16Act::default(); n * stride];
        for t in 0..n {
            quantize_activations_16(&x[t * cols..(t + 1) * cols], &mut out[t * stride..(t + 1) * stride]);
        }
        out
    }
}

/// `Σ|q_i · x_i|` for 32 packed nibbles, each shifted by `offset`.
fn nibble_terms(qs: &[u8; QK / 2], x: &[i8; QK], offset: i32) -> f64 {
    let mut sum = 0.0;
    for j in 0..QK / 2 {
        sum += f64::from((i32::from(qs[j] & 0x0F) - offset) * i32::from(x[j])).abs();
        sum += f64::from((i32::from(qs[j] >> 4) - offset) * i32::from(x[j + QK / 2])).abs();
    }
    sum
}

fn quantize_int8(x: &[f32], n: usize, cols: usize, stride: usize) -> Vec<BlockQ8Act> {
    let mut out = vec![BlockQ8Act::default(); n * stride];
    for t in 0..n {
        quantize_activations(&x[t * cols..(t + 1) * cols], &mut out[t * stride..(t + 1) * stride]);
    }
    out
}

/// Implements `Format` for Q4_0 with groups of `32 * S`, reading the table entries `dot`,
/// `dot_r4` and `dot_r4x4`.
macro_rules! q4_0_format {
    ($s:literal, $name:literal, $quant:expr, $dot:ident, $dot_r4:ident, $dot_r4x4:ident) => {
        impl Format for Q4_0<$s> {
            type Block = BlockQ4_0G<$s>;
            type Act = BlockQ8Act;
            const SUBBLOCKS: usize = $s;
            const NAME: &'static str = $name;
            const QUANT: QuantFormat = $quant;

            fn random_block(rng: &mut Rng) -> BlockQ4_0G<$s> {
                BlockQ4_0G { d: rng.f16_scale(), qs: core::array::from_fn(|_| rng.nibbles()) }
            }

            fn random_act(rng: &mut Rng) -> BlockQ8Act {
                rng.q8_act()
            }

            fn terms(w: &BlockQ4_0G<$s>, sub: usize, x: &BlockQ8Act) -> f64 {
                (f16_value(w.d) * f64::from(x.d)).abs() * nibble_terms(&w.qs[sub], &x.qs, 8)
            }

            fn dot(k: &Kernels) -> fn(&[BlockQ4_0G<$s>], &[BlockQ8Act]) -> f32 {
                k.$dot
            }

            fn dot_r4(k: &Kernels) -> fn(&[BlockQ4_0G<$s>], &[BlockQ8Act]) -> [f32; 4] {
                k.$dot_r4
            }

            fn dot_r4x4(k: &Kernels) -> Dot4x4<BlockQ4_0G<$s>, BlockQ8Act> {
                k.$dot_r4x4
            }

            fn quantize(x: &[f32], n: usize, cols: usize, stride: usize) -> Vec<BlockQ8Act> {
                quantize_int8(x, n, cols, stride)
            }
        }
    };
}

q4_0_format!(1, "q4_0", QuantFormat::Q4_0, dot_q4_0, dot_q4_0_r4, dot_q4_0_r4x4);
q4_0_format!(2, "q4_0_g64", QuantFormat::Q4_0G64, dot_q4_0_g64, dot_q4_0_g64_r4, dot_q4_0_g64_r4x4);
q4_0_format!(4, "q4_0_g128", QuantFormat::Q4_0G128, dot_q4_0_g128, dot_q4_0_g128_r4, dot_q4_0_g128_r4x4);

impl Format for Q4_1 {
    type Block = BlockQ4_1;
    type Act = BlockQ8Act;
    const SUBBLOCKS: usize = 1;
    const NAME: &'static str = "q4_1";
    const QUANT: QuantFormat = QuantFormat::Q4_1;

    fn random_block(rng: &mut Rng) -> BlockQ4_1 {
        BlockQ4_1 { d: rng.f16_scale(), m: rng.f16_scale(), qs: rng.nibbles() }
    }

    fn random_act(rng: &mut Rng) -> BlockQ8Act {
        rng.q8_act()
    }

    fn terms(w: &BlockQ4_1, _sub: usize, x: &BlockQ8Act) -> f64 {
        let act_sum: f64 = x.qs.iter().map(|&q| f64::from(q).abs()).sum();
        (f16_value(w.d) * f64::from(x.d)).abs() * nibble_terms(&w.qs, &x.qs, 0) + (f16_value(w.m) * f64::from(x.d)).abs() * act_sum
    }

    fn dot(k: &Kernels) -> fn(&[BlockQ4_1], &[BlockQ8Act]) -> f32 {
        k.dot_q4_1
    }

    fn dot_r4(k: &Kernels) -> fn(&[BlockQ4_1], &[BlockQ8Act]) -> [f32; 4] {
        k.dot_q4_1_r4
    }

    fn dot_r4x4(k: &Kernels) -> Dot4x4<BlockQ4_1, BlockQ8Act> {
        k.dot_q4_1_r4x4
    }

    fn quantize(x: &[f32], n: usize, cols: usize, stride: usize) -> Vec<BlockQ8Act> {
        quantize_int8(x, n, cols, stride)
    }
}

/// `Σ|products|` of one row of weight blocks against one activation row, pairing sub-block
/// `i` with `x[i]` as the kernels do.
fn row_terms<F: Format>(w: &[F::Block], x: &[F::Act]) -> f64 {
    let units = (w.len() * F::SUBBLOCKS).min(x.len());
    (0..units).map(|u| F::terms(&w[u / F::SUBBLOCKS], u % F::SUBBLOCKS, &x[u])).sum()
}

fn random_blocks<F: Format>(rng: &mut Rng, count: usize) -> Vec<F::Block> {
    (0..count).map(|_| F::random_block(rng)).collect()
}

fn random_acts<F: Format>(rng: &mut Rng, count: usize) -> Vec<F::Act> {
    (0..count).map(|_| F::random_act(rng)).collect()
}

/// Compares the one-row kernel with the scalar one. The activation row has three extra
/// blocks, as `matmul` pads its rows.
fn check_dot<F: Format>(table: &Kernels) {
    for (case, &blocks) in BLOCK_COUNTS.iter().enumerate() {
        for trial in 0..TRIALS {
            let mut rng = Rng::new(1000 * case as u64 + trial);
            let w = random_blocks::<F>(&mut rng, blocks);
            let x = random_acts::<F>(&mut rng, blocks * F::SUBBLOCKS + 3);
            let got = F::dot(table)(&w, &x);
            let want = F::dot(&kernels::SCALAR)(&w, &x);
            let what = || format!("{} dot_{} with {blocks} blocks, trial {trial}", table.isa, F::NAME);
            assert_close(table.isa, got, want, row_terms::<F>(&w, &x), &what);
        }
    }
}

/// Compares the four-row kernel with the scalar one: `w` contains `blocks` groups of four
/// interleaved blocks.
fn check_dot_r4<F: Format>(table: &Kernels) {
    for (case, &blocks) in BLOCK_COUNTS.iter().enumerate() {
        for trial in 0..TRIALS {
            let mut rng = Rng::new(2000 * case as u64 + trial);
            let w = random_blocks::<F>(&mut rng, 4 * blocks);
            let x = random_acts::<F>(&mut rng, blocks * F::SUBBLOCKS + 3);
            let got = F::dot_r4(table)(&w, &x);
            let want = F::dot_r4(&kernels::SCALAR)(&w, &x);
            for row in 0..4 {
                let row_blocks: Vec<F::Block> = w.iter().skip(row).step_by(4).copied().collect();
                let what = || format!("{} dot_{}_r4 with {blocks} blocks, trial {trial}, row {row}", table.isa, F::NAME);
                assert_close(table.isa, got[row], want[row], row_terms::<F>(&row_blocks, &x), &what);
            }
        }
    }
}

/// Compares the four-row, four-token kernel with the scalar one, token by token.
fn check_dot_r4x4<F: Format>(table: &Kernels) {
    for (case, &blocks) in BLOCK_COUNTS.iter().enumerate() {
        for trial in 0..TRIALS {
            let mut rng = Rng::new(4000 * case as u64 + trial);
            let w = random_blocks::<F>(&mut rng, 4 * blocks);
            let x: [Vec<F::Act>; 4] = core::array::from_fn(|_| random_acts::<F>(&mut rng, blocks * F::SUBBLOCKS + 3));
            let rows = [x[0].as_slice(), x[1].as_slice(), x[2].as_slice(), x[3].as_slice()];
            let got = F::dot_r4x4(table)(&w, rows);
            let want = F::dot_r4x4(&kernels::SCALAR)(&w, rows);
            for (token, x) in rows.into_iter().enumerate() {
                for row in 0..4 {
                    let row_blocks: Vec<F::Block> = w.iter().skip(row).step_by(4).copied().collect();
                    let what = || format!("{} dot_{}_r4x4 with {blocks} blocks, trial {trial}, token {token}, row {row}", table.isa, F::NAME);
                    assert_close(table.isa, got[token][row], want[token][row], row_terms::<F>(&row_blocks, x), &what);
                }
            }
        }
    }
}

#[test]
fn dot_q8_0_matches_scalar() {
    for table in simd_tables() {
        check_dot::<Q8_0>(table);
        check_dot_r4::<Q8_0>(table);
        check_dot_r4x4::<Q8_0>(table);
    }
}

#[test]
fn dot_q4_0_matches_scalar() {
    for table in simd_tables() {
        check_dot::<Q4_0<1>>(table);
        check_dot_r4::<Q4_0<1>>(table);
        check_dot_r4x4::<Q4_0<1>>(table);
    }
}

#[test]
fn dot_q4_0_g64_matches_scalar() {
    for table in simd_tables() {
        check_dot::<Q4_0<2>>(table);
        check_dot_r4::<Q4_0<2>>(table);
        check_dot_r4x4::<Q4_0<2>>(table);
    }
}

#[test]
fn dot_q4_0_g128_matches_scalar() {
    for table in simd_tables() {
        check_dot::<Q4_0<4>>(table);
        check_dot_r4::<Q4_0<4>>(table);
        check_dot_r4x4::<Q4_0<4>>(table);
    }
}

#[test]
fn dot_q4_1_matches_scalar() {
    for table in simd_tables() {
        check_dot::<Q4_1>(table);
        check_dot_r4::<Q4_1>(table);
        check_dot_r4x4::<Q4_1>(table);
    }
}

#[test]
fn dot_q4_0_r4x2_matches_scalar() {
    for table in simd_tables() {
        for (case, &blocks) in BLOCK_COUNTS.iter().enumerate() {
            for trial in 0..TRIALS {
                let mut rng = Rng::new(3000 * case as u64 + trial);
                let w = random_blocks::<Q4_0<1>>(&mut rng, 4 * blocks);
                let x0 = random_acts::<Q4_0<1>>(&mut rng, blocks + 3);
                let x1 = random_acts::<Q4_0<1>>(&mut rng, blocks + 3);
                let got = (table.dot_q4_0_r4x2)(&w, &x0, &x1);
                let want = (kernels::SCALAR.dot_q4_0_r4x2)(&w, &x0, &x1);
                for (token, x) in [&x0, &x1].into_iter().enumerate() {
                    for row in 0..4 {
                        let row_blocks: Vec<_> = w.iter().skip(row).step_by(4).copied().collect();
                        let what = || format!("{} dot_q4_0_r4x2 with {blocks} blocks, trial {trial}, token {token}, row {row}", table.isa);
                        assert_close(table.isa, got[token][row], want[token][row], row_terms::<Q4_0<1>>(&row_blocks, x), &what);
                    }
                }
            }
        }
    }
}

/// Random f16 values: ordinary, zero, subnormal and near the f16 maximum, either sign.
fn random_f16(rng: &mut Rng, n: usize) -> Vec<f16> {
    (0..n)
        .map(|_| {
            let value = match rng.below(8) {
                0 => f16::ZERO,
                1 => f16::from_bits(1 + rng.below(0x3FF) as u16),
                2 => f16::from_f32(65504.0 * rng.unit().abs()),
                _ => f16::from_f32(rng.unit()),
            };
            if rng.below(2) == 0 {
                -value
            } else {
                value
            }
        })
        .collect()
}

fn random_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.wide()).collect()
}

#[test]
fn dot_f32_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate() {
            let mut rng = Rng::new(4000 + seed as u64);
            let a = random_f32(&mut rng, n);
            let b = random_f32(&mut rng, n);
            let terms: f64 = a.iter().zip(&b).map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs()).sum();
            let what = || format!("{} dot_f32 of length {n}", table.isa);
            assert_close(table.isa, (table.dot_f32)(&a, &b), (kernels::SCALAR.dot_f32)(&a, &b), terms, &what);
        }
    }
}

#[test]
fn dot_f16_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate() {
            let mut rng = Rng::new(5000 + seed as u64);
            let a = random_f16(&mut rng, n);
            let b = random_f32(&mut rng, n);
            let terms: f64 = a.iter().zip(&b).map(|(&x, &y)| (f64::from(x.to_f32()) * f64::from(y)).abs()).sum();
            let what = || format!("{} dot_f16 of length {n}", table.isa);
            assert_close(table.isa, (table.dot_f16)(&a, &b), (kernels::SCALAR.dot_f16)(&a, &b), terms, &what);
        }
    }
}

/// Blocks per row of the Q8_0 KV cache kernels: heads of 32 to 256 values, and odd counts.
const KV_BLOCK_COUNTS: [usize; 6] = [0, 1, 2, 3, 4, 8];

#[test]
fn dot_q8_0_f32_matches_scalar() {
    for table in simd_tables() {
        for (seed, &blocks) in KV_BLOCK_COUNTS.iter().enumerate() {
            let mut rng = Rng::new(5500 + seed as u64);
            let w: Vec<BlockQ8_0> = (0..blocks).map(|_| Q8_0::random_block(&mut rng)).collect();
            let x = random_f32(&mut rng, blocks * QK + 5);
            let terms: f64 = w
                .iter()
                .enumerate()
                .map(|(b, block)| (0..QK).map(|i| (f16_value(block.d) * f64::from(block.qs[i]) * f64::from(x[b * QK + i])).abs()).sum::<f64>())
                .sum();
            let what = || format!("{} dot_q8_0_f32 of {blocks} blocks", table.isa);
            assert_close(table.isa, (table.dot_q8_0_f32)(&w, &x), (kernels::SCALAR.dot_q8_0_f32)(&w, &x), terms, &what);
        }
    }
}

#[test]
fn axpy_q8_0_matches_scalar() {
    for table in simd_tables() {
        for (seed, &blocks) in KV_BLOCK_COUNTS.iter().enumerate() {
            let mut rng = Rng::new(6500 + seed as u64);
            let a = rng.wide();
            let x: Vec<BlockQ8_0> = (0..blocks).map(|_| Q8_0::random_block(&mut rng)).collect();
            let y = random_f32(&mut rng, blocks * QK + 5);
            let mut got = y.clone();
            let mut want = y.clone();
            (table.axpy_q8_0)(a, &x, &mut got);
            (kernels::SCALAR.axpy_q8_0)(a, &x, &mut want);
            for i in 0..y.len() {
                let product = if i < blocks * QK { f64::from(a) * f16_value(x[i / QK].d) * f64::from(x[i / QK].qs[i % QK]) } else { 0.0 };
                let terms = product.abs() + f64::from(y[i]).abs();
                let what = || format!("{} axpy_q8_0 of {blocks} blocks, element {i}", table.isa);
                assert_close(table.isa, got[i], want[i], terms, &what);
            }
        }
    }
}

#[test]
fn softmax_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate().filter(|(_, &n)| n > 0) {
            let mut rng = Rng::new(7500 + seed as u64);
            let x: Vec<f32> = (0..n).map(|_| rng.unit() * 30.0).collect();
            let mut got = x.clone();
            let mut want = x.clone();
            (table.softmax)(&mut got);
            (kernels::SCALAR.softmax)(&mut want);
            for i in 0..n {
                let what = || format!("{} softmax of length {n}, element {i}", table.isa);
                assert_close(table.isa, got[i], want[i], f64::from(want[i]), &what);
            }
        }
    }
}

/// Attention kernels over a cache of `positions` rows of `stride` elements, reading the head
/// at element `offset` of each row.
#[test]
fn attention_kernels_match_scalar() {
    for table in simd_tables() {
        for (seed, &(positions, heads, head_dim)) in [(1, 1, 32), (5, 2, 64), (9, 3, 64), (17, 2, 128)].iter().enumerate() {
            let mut rng = Rng::new(8500 + seed as u64);
            let stride = heads * head_dim;
            let keys = random_f16(&mut rng, positions * stride);
            let values = random_f16(&mut rng, positions * stride);
            let q = random_f32(&mut rng, head_dim);
            let weights: Vec<f32> = (0..positions).map(|_| rng.unit().abs()).collect();
            let offset = (heads - 1) * head_dim;
            let (mut got, mut want) = (vec![0.0; positions], vec![0.0; positions]);
            (table.scores_f16)(&keys[offset..], stride, &q, &mut got);
            (kernels::SCALAR.scores_f16)(&keys[offset..], stride, &q, &mut want);
            for p in 0..positions {
                let key = &keys[offset + p * stride..offset + p * stride + head_dim];
                let terms: f64 = key.iter().zip(&q).map(|(&k, &x)| (f64::from(k.to_f32()) * f64::from(x)).abs()).sum();
                assert_close(table.isa, got[p], want[p], terms, &|| format!("{} scores_f16, {positions} positions, head_dim {head_dim}, position {p}", table.isa));
            }
            let (mut got, mut want) = (vec![f32::NAN; head_dim], vec![f32::NAN; head_dim]);
            (table.mix_f16)(&values[offset..], stride, &weights, &mut got);
            (kernels::SCALAR.mix_f16)(&values[offset..], stride, &weights, &mut want);
            for i in 0..head_dim {
                let terms: f64 = (0..positions).map(|p| (f64::from(weights[p]) * f64::from(values[offset + p * stride + i].to_f32())).abs()).sum();
                assert_close(table.isa, got[i], want[i], terms, &|| format!("{} mix_f16, {positions} positions, head_dim {head_dim}, element {i}", table.isa));
            }

            let blocks = |rng: &mut Rng| -> Vec<BlockQ8_0> { (0..positions * stride / QK).map(|_| Q8_0::random_block(rng)).collect() };
            let (keys, values) = (blocks(&mut rng), blocks(&mut rng));
            let (block_stride, block_offset) = (stride / QK, offset / QK);
            let (mut got, mut want) = (vec![0.0; positions], vec![0.0; positions]);
            (table.scores_q8_0)(&keys[block_offset..], block_stride, &q, &mut got);
            (kernels::SCALAR.scores_q8_0)(&keys[block_offset..], block_stride, &q, &mut want);
            for p in 0..positions {
                let key = &keys[block_offset + p * block_stride..block_offset + p * block_stride + head_dim / QK];
                let terms: f64 = (0..head_dim).map(|i| (f16_value(key[i / QK].d) * f64::from(key[i / QK].qs[i % QK]) * f64::from(q[i])).abs()).sum();
                assert_close(table.isa, got[p], want[p], terms, &|| format!("{} scores_q8_0, {positions} positions, head_dim {head_dim}, position {p}", table.isa));
            }
            let (mut got, mut want) = (vec![f32::NAN; head_dim], vec![f32::NAN; head_dim]);
            (table.mix_q8_0)(&values[block_offset..], block_stride, &weights, &mut got);
            (kernels::SCALAR.mix_q8_0)(&values[block_offset..], block_stride, &weights, &mut want);
            for i in 0..head_dim {
                let terms: f64 = (0..positions)
                    .map(|p| {
                        let block = &values[block_offset + p * block_stride + i / QK];
                        (f64::from(weights[p]) * f16_value(block.d) * f64::from(block.qs[i % QK])).abs()
                    })
                    .sum();
                assert_close(table.isa, got[i], want[i], terms, &|| format!("{} mix_q8_0, {positions} positions, head_dim {head_dim}, element {i}", table.isa));
            }
        }
    }
}

#[test]
fn axpy_f32_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate() {
            let mut rng = Rng::new(6000 + seed as u64);
            let a = rng.wide();
            let x = random_f32(&mut rng, n);
            let y = random_f32(&mut rng, n);
            let mut got = y.clone();
            let mut want = y.clone();
            (table.axpy_f32)(a, &x, &mut got);
            (kernels::SCALAR.axpy_f32)(a, &x, &mut want);
            for i in 0..n {
                let terms = f64::from(y[i]).abs() + (f64::from(a) * f64::from(x[i])).abs();
                let what = || format!("{} axpy_f32 of length {n}, element {i}", table.isa);
                assert_close(table.isa, got[i], want[i], terms, &what);
            }
        }
    }
}

#[test]
fn axpy_f16_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate() {
            let mut rng = Rng::new(6500 + seed as u64);
            let a = rng.wide();
            let x = random_f16(&mut rng, n);
            let y = random_f32(&mut rng, n);
            let mut got = y.clone();
            let mut want = y.clone();
            (table.axpy_f16)(a, &x, &mut got);
            (kernels::SCALAR.axpy_f16)(a, &x, &mut want);
            for i in 0..n {
                let terms = f64::from(y[i]).abs() + (f64::from(a) * f64::from(x[i].to_f32())).abs();
                let what = || format!("{} axpy_f16 of length {n}, element {i}", table.isa);
                assert_close(table.isa, got[i], want[i], terms, &what);
            }
        }
    }
}

/// Compares one `silu_mul` output element. NaN must meet NaN, and infinities must match.
fn assert_silu_close(isa: Isa, got: f32, want: f32, what: &dyn Fn() -> String) {
    if want.is_nan() || want.is_infinite() {
        assert!(got.is_nan() == want.is_nan() && (want.is_nan() || got == want), "{}: SIMD {got} vs scalar {want}", what());
    } else {
        assert_close(isa, got, want, f64::from(want).abs(), what);
    }
}

#[test]
fn silu_mul_matches_scalar() {
    for table in simd_tables() {
        for (seed, &n) in FLOAT_LENGTHS.iter().enumerate() {
            let mut rng = Rng::new(7000 + seed as u64);
            let gate: Vec<f32> = (0..n).map(|_| rng.unit() * 20.0).collect();
            let up = random_f32(&mut rng, n);
            let mut got = gate.clone();
            let mut want = gate.clone();
            (table.silu_mul)(&mut got, &up);
            (kernels::SCALAR.silu_mul)(&mut want, &up);
            for i in 0..n {
                let what = || format!("{} silu_mul of length {n}, element {i} (gate {})", table.isa, gate[i]);
                assert_silu_close(table.isa, got[i], want[i], &what);
            }
        }
    }
}

/// The whole f32 range of `silu_mul`: a dense sweep of [-100, 100], every power of two, and
/// the special values, padded to a multiple of 8 so that no value falls in a scalar tail.
#[test]
fn silu_mul_matches_scalar_on_sweep() {
    let mut gate: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-4).collect();
    for exponent in -149..=127 {
        let power = 2f32.powi(exponent);
        gate.extend([power, -power, power * 1.5, -power * 1.5]);
    }
    gate.extend([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 88.72, -88.72, 87.34, -87.34, 103.9, -103.9]);
    gate.resize(gate.len().next_multiple_of(8), 1.0);
    let up = vec![1.0f32; gate.len()];
    let mut want = gate.clone();
    (kernels::SCALAR.silu_mul)(&mut want, &up);
    for table in simd_tables() {
        let mut got = gate.clone();
        (table.silu_mul)(&mut got, &up);
        let mut max_relative = 0.0f64;
        for i in 0..gate.len() {
            let what = || format!("{} silu_mul of gate {:e}", table.isa, gate[i]);
            assert_silu_close(table.isa, got[i], want[i], &what);
            if want[i].is_finite() && want[i] != 0.0 {
                max_relative = max_relative.max(((f64::from(got[i]) - f64::from(want[i])) / f64::from(want[i])).abs());
            }
        }
        eprintln!("{} silu_mul: largest relative difference from scalar {max_relative:e}", table.isa);
    }
}

/// The scalar `exp` that `silu_mul` builds on, against `e^x` computed in f64: within 4e-7
/// relative over the normal range, zero and infinity where f32 has nothing else, NaN kept.
#[test]
fn scalar_exp_matches_f64_exp() {
    let mut worst = 0.0f64;
    for i in -870_000..=880_000 {
        let x = i as f32 * 1e-4;
        let want = f64::from(x).exp();
        let got = f64::from(kernels::scalar::exp(x));
        if want >= f64::from(f32::MIN_POSITIVE) && want <= f64::from(f32::MAX) {
            let relative = ((got - want) / want).abs();
            assert!(relative < 4e-7, "exp({x:e}) = {got:e}, f64 gives {want:e}: relative error {relative:e}");
            worst = worst.max(relative);
        }
    }
    assert_eq!(kernels::scalar::exp(-200.0), 0.0, "exp(-200) underflows to zero");
    assert_eq!(kernels::scalar::exp(100.0), f32::INFINITY, "exp(100) overflows to infinity");
    assert_eq!(kernels::scalar::exp(f32::NEG_INFINITY), 0.0, "exp(-inf) is zero");
    assert!(kernels::scalar::exp(f32::NAN).is_nan(), "exp(NaN) is NaN");
    eprintln!("scalar exp: largest relative error {worst:e}");
}

/// `Σ|products|` of every output of `matmul`, from the blocks it reads.
fn matmul_terms<F: Format>(qtype: QuantType, data: &[u8], rows: usize, cols: usize, x: &[f32], n: usize) -> Vec<f64> {
    let blocks = qtype.format.blocks_per_row(cols as u64) as usize;
    let stride = cols.div_ceil(4 * QK) * 4;
    let acts = F::quantize(x, n, cols, stride);
    let all: &[F::Block] = bytemuck::cast_slice(data);
    let mut out = vec![0.0; n * rows];
    for r in 0..rows {
        let row: Vec<F::Block> = (0..blocks).map(|b| all[block_index(r, b, rows, blocks, qtype.interleave as usize)]).collect();
        for t in 0..n {
            out[t * rows + r] = row_terms::<F>(&row, &acts[t * stride..(t + 1) * stride]);
        }
    }
    out
}

fn check_matmul<F: Format>(table: &Kernels) {
    for interleave in INTERLEAVES {
        let qtype = QuantType { format: F::QUANT, interleave };
        for &rows in &MATMUL_ROWS {
            for &cols in &MATMUL_COLS {
                let mut rng = Rng::new((rows * 1000 + cols) as u64);
                let weights: Vec<f32> = (0..rows * cols).map(|_| rng.unit()).collect();
                let data = quantize_matrix(&weights, rows, cols, qtype);
                let matrix = Matrix { data: TensorData::Quant { qtype, data: &data }, rows, cols };
                for n in MATMUL_TOKENS {
                    let x: Vec<f32> = (0..n * cols).map(|_| rng.wide()).collect();
                    let run = |kernels: &Kernels| {
                        let mut out = vec![f32::NAN; n * rows];
                        matmul(kernels, &matrix, &x, &mut QuantizedInput::default(), n, &mut out, &Serial);
                        out
                    };
                    let got = run(table);
                    let want = run(&kernels::SCALAR);
                    let terms = matmul_terms::<F>(qtype, &data, rows, cols, &x, n);
                    // The scalar matmul agrees with the one-row scalar kernel on each row and
                    // token, whatever order of tiles and token groups `matmul` takes. (Rows of
                    // an interleaved group add a block's sub-block terms before the row total,
                    // the one-row kernel adds them one by one, so groups of 64 and 128 round
                    // differently.)
                    let blocks = qtype.format.blocks_per_row(cols as u64) as usize;
                    let stride = cols.div_ceil(4 * QK) * 4;
                    let acts = F::quantize(&x, n, cols, stride);
                    let all: &[F::Block] = bytemuck::cast_slice(&data);
                    for r in 0..rows {
                        let row: Vec<F::Block> = (0..blocks).map(|b| all[block_index(r, b, rows, blocks, qtype.interleave as usize)]).collect();
                        for t in 0..n {
                            let direct = F::dot(&kernels::SCALAR)(&row, &acts[t * stride..(t + 1) * stride]);
                            let (got, bound) = (f64::from(want[t * rows + r]), TOLERANCE * terms[t * rows + r]);
                            assert!((got - f64::from(direct)).abs() <= bound, "scalar matmul {qtype} {rows}x{cols}, {n} tokens, row {r}, token {t}: {got} vs {direct}");
                        }
                    }
                    for i in 0..n * rows {
                        let what = || format!("{} matmul {qtype} {rows}x{cols}, {n} tokens, output {i}", table.isa);
                        assert_close(table.isa, got[i], want[i], terms[i], &what);
                    }
                }
            }
        }
    }
}

#[test]
fn quantized_matmul_matches_scalar() {
    for table in simd_tables() {
        check_matmul::<Q8_0>(table);
        check_matmul::<Q4_0<1>>(table);
        check_matmul::<Q4_0<4>>(table);
        check_matmul::<Q4_1>(table);
    }
}

#[test]
fn forced_isa_is_tested() {
    let Ok(name) = std::env::var("TINYLLM_ISA") else {
        return;
    };
    let tables = simd_tables();
    assert_eq!(tables.len(), 1, "TINYLLM_ISA={name} selects one table");
    assert_eq!(tables[0].isa.name(), name.trim(), "TINYLLM_ISA={name} must test that table");
}
