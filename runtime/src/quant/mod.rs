//! Block-quantized weights: formats, row layouts, round-to-nearest quantization and
//! dequantization.
//!
//! A quantized matrix of `rows` × `cols` stores each row as `ceil(cols / G)` blocks of `G`
//! weights; a last partial group is padded with zeros. Rows are stored one after the other
//! (interleave 1) or, for interleave 4, in groups of four rows whose blocks alternate: block 0
//! of rows 0-3, then block 1 of rows 0-3, and so on. Rows past the last full group of four
//! follow in plain order. The layout is chosen by the converter; the runtime reads it in place.
//!
//! Error enters in two places: the weights are rounded once when the file is written (the
//! format's step, `d`, per group), and each activation row is rounded per group of 32 before
//! the integer dot products: to int8 (step `max|x| / 127`) for 4-bit weights, to int16 (step
//! `max|x| / 32767`) for 8-bit weights, whose own error is small enough that int8 activations
//! would dominate it. Products and sums inside a group are exact integers; the per-group
//! scaling and the sum across groups are f32.

pub mod block;
mod quantize;

pub use block::{f16_to_f32, f32_to_f16, BlockQ16Act, BlockQ4_0, BlockQ4_0G, BlockQ4_0G128, BlockQ4_0G64, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};
pub use quantize::{interleave_rows, quantize_activations, quantize_activations_16, quantize_matrix, quantize_row_q4_0, quantize_row_q4_1, quantize_row_q8_0};

use core::fmt;

/// The block format of a quantized matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    /// 8-bit weights, groups of 32, f16 scale: 8.5 bits per weight.
    Q8_0,
    /// 4-bit symmetric weights, groups of 32, f16 scale: 4.5 bits per weight.
    Q4_0,
    /// 4-bit symmetric weights, groups of 128, f16 scale: 4.125 bits per weight.
    Q4_0G128,
    /// 4-bit symmetric weights, groups of 64, f16 scale: 4.25 bits per weight.
    Q4_0G64,
    /// 4-bit weights with a scale and a minimum, groups of 32: 5.0 bits per weight.
    Q4_1,
}

impl QuantFormat {
    /// Every format, in code order.
    pub const ALL: [QuantFormat; 5] = [QuantFormat::Q8_0, QuantFormat::Q4_0, QuantFormat::Q4_0G128, QuantFormat::Q4_1, QuantFormat::Q4_0G64];

    /// Weights per block (the group size).
    pub fn group(self) -> usize {
        match self {
            QuantFormat::Q4_0G128 => 128,
            QuantFormat::Q4_0G64 => 64,
            _ => QK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantFormat::Q8_0 => core::mem::size_of::<BlockQ8_0>(),
            QuantFormat::Q4_0 => core::mem::size_of::<BlockQ4_0>(),
            QuantFormat::Q4_0G128 => core::mem::size_of::<BlockQ4_0G128>(),
            QuantFormat::Q4_0G64 => core::mem::size_of::<BlockQ4_0G64>(),
            QuantFormat::Q4_1 => core::mem::size_of::<BlockQ4_1>(),
        }
    }

    /// Bits per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.group() as f64
    }

    /// Format code in the low byte of a tensor-table dtype code.
    pub fn code(self) -> u8 {
        match self {
            QuantFormat::Q8_0 => 16,
            QuantFormat::Q4_0 => 17,
            QuantFormat::Q4_0G128 => 18,
            QuantFormat::Q4_1 => 19,
            QuantFormat::Q4_0G64 => 20,
        }
    }

    /// Decodes a format code.
    pub fn from_code(code: u8) -> Option<QuantFormat> {
        QuantFormat::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Lower-case name (`q8_0`, `q4_0`, `q4_0_g128`, `q4_1`).
    pub fn name(self) -> &'static str {
        match self {
            QuantFormat::Q8_0 => "q8_0",
            QuantFormat::Q4_0 => "q4_0",
            QuantFormat::Q4_0G128 => "q4_0_g128",
            QuantFormat::Q4_1 => "q4_1",
            QuantFormat::Q4_0G64 => "q4_0_g64",
        }
    }

    /// Parses a lower-case name.
    pub fn from_name(name: &str) -> Option<QuantFormat> {
        QuantFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Number of blocks in a row of `cols` weights.
    pub fn blocks_per_row(self, cols: u64) -> u64 {
        cols.div_ceil(self.group() as u64)
    }
}

/// Row interleaves the kernels read: 1 (plain rows) and 4.
pub const INTERLEAVES: [u8; 2] = [1, 4];

/// A quantized element type: a block format and a row interleave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantType {
    /// Block format.
    pub format: QuantFormat,
    /// Rows whose blocks are stored together: 1 or 4.
    pub interleave: u8,
}

impl QuantType {
    /// Bytes of a `rows` × `cols` matrix, or `None` on overflow.
    pub fn byte_len(self, rows: u64, cols: u64) -> Option<u64> {
        rows.checked_mul(self.format.blocks_per_row(cols))?.checked_mul(self.format.block_bytes() as u64)
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.interleave == 1 {
            f.write_str(self.format.name())
        } else {
            write!(f, "{}_r{}", self.format.name(), self.interleave)
        }
    }
}

/// Index of the block holding group `block` of row `row`, in a matrix of `rows` rows with
/// `blocks_per_row` blocks each, stored with `interleave`.
#[inline]
pub fn block_index(row: usize, block: usize, rows: usize, blocks_per_row: usize, interleave: usize) -> usize {
    let interleaved_rows = rows - rows % interleave;
    if row < interleaved_rows {
        let group = row / interleave;
        group * interleave * blocks_per_row + block * interleave + row % interleave
    } else {
        row * blocks_per_row + block
    }
}

/// Dequantizes row `row` of a quantized matrix into `out` (`cols` values).
pub fn dequantize_row(qtype: QuantType, data: &[u8], rows: usize, cols: usize, row: usize, out: &mut [f32]) {
    let format = qtype.format;
    let group = format.group();
    let blocks = format.blocks_per_row(cols as u64) as usize;
    let bytes = format.block_bytes();
    let mut buffer = [0.0f32; 128];
    for b in 0..blocks {
        let index = block_index(row, b, rows, blocks, qtype.interleave as usize);
        let raw = &data[index * bytes..(index + 1) * bytes];
        let values = &mut buffer[..group];
        match format {
            QuantFormat::Q8_0 => bytemuck::from_bytes::<BlockQ8_0>(raw).dequantize(values),
            QuantFormat::Q4_0 => bytemuck::from_bytes::<BlockQ4_0>(raw).dequantize(values),
            QuantFormat::Q4_0G128 => bytemuck::from_bytes::<BlockQ4_0G128>(raw).dequantize(values),
            QuantFormat::Q4_0G64 => bytemuck::from_bytes::<BlockQ4_0G64>(raw).dequantize(values),
            QuantFormat::Q4_1 => bytemuck::from_bytes::<BlockQ4_1>(raw).dequantize(values),
        }
        let start = b * group;
        let end = (start + group).min(cols);
        out[start..end].copy_from_slice(&values[..end - start]);
    }
}
