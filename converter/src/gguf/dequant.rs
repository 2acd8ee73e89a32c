//! Dequantization of F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensor data to f32.
//!
//! The block layouts and formulas follow ggml's reference `dequantize_row_*` functions
//! (ggml-quants.c in llama.cpp). The scales are converted from f16 to f32 first, and every
//! product and sum is done in f32 without fused multiply-add, so the results equal ggml's
//! scalar reference bit for bit.

use bytemuck::{Pod, Zeroable};
use half::{bf16, f16};

use super::cursor::decode_le;
use super::error::GgufError;
use super::ggml_type::GgmlType;

/// Weights per block in Q8_0, Q4_0 and Q4_1.
pub const QK: usize = 32;

/// A Q8_0 block: 32 signed 8-bit weights and one f16 scale, 34 bytes, 8.5 bits per weight.
///
/// Dequantization: `x[i] = d * qs[i]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale `d`, an f16 stored little-endian.
    pub d: [u8; 2],
    /// Quantized weights.
    pub qs: [i8; QK],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// A Q4_0 block: 32 unsigned 4-bit weights and one f16 scale, 18 bytes, 4.5 bits per weight.
///
/// Byte `j` stores weight `j` in its low nibble and weight `j + 16` in its high nibble.
/// Dequantization: `x[i] = (q[i] - 8) * d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale `d`, an f16 stored little-endian.
    pub d: [u8; 2],
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

/// A Q4_1 block: 32 unsigned 4-bit weights, an f16 scale and an f16 minimum, 20 bytes,
/// 5 bits per weight.
///
/// Byte `j` stores weight `j` in its low nibble and weight `j + 16` in its high nibble.
/// Dequantization: `x[i] = q[i] * d + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale `d`, an f16 stored little-endian.
    pub d: [u8; 2],
    /// Minimum `m`, an f16 stored little-endian.
    pub m: [u8; 2],
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

fn f16_le_to_f32(bytes: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(bytes)).to_f32()
}

impl BlockQ8_0 {
    /// Dequantizes the block into `out`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le_to_f32(self.d);
        for (x, &q) in out.iter_mut().zip(&self.qs) {
            *x = f32::from(q) * d;
        }
    }
}

impl BlockQ4_0 {
    /// Dequantizes the block into `out`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le_to_f32(self.d);
        let (low, high) = out.split_at_mut(QK / 2);
        for ((lo, hi), &byte) in low.iter_mut().zip(high.iter_mut()).zip(&self.qs) {
            *lo = f32::from(i16::from(byte & 0x0F) - 8) * d;
            *hi = f32::from(i16::from(byte >> 4) - 8) * d;
        }
    }
}

impl BlockQ4_1 {
    /// Dequantizes the block into `out`.
    pub fn dequantize(&self, out: &mut [f32; QK]) {
        let d = f16_le_to_f32(self.d);
        let m = f16_le_to_f32(self.m);
        let (low, high) = out.split_at_mut(QK / 2);
        for ((lo, hi), &byte) in low.iter_mut().zip(high.iter_mut()).zip(&self.qs) {
            *lo = f32::from(byte & 0x0F) * d + m;
            *hi = f32::from(byte >> 4) * d + m;
        }
    }
}

/// Dequantizes whole blocks of type `B` with `dequantize_block`.
fn dequantize_blocks<B: Pod>(
    tensor: &str,
    ggml_type: GgmlType,
    data: &[u8],
    dequantize_block: fn(&B, &mut [f32; QK]),
) -> Result<Vec<f32>, GgufError> {
    let blocks: &[B] =
        bytemuck::try_cast_slice(data).map_err(|_| GgufError::InvalidDataLength {
            tensor: tensor.to_string(),
            ggml_type: ggml_type.name(),
            len: data.len() as u64,
            block_bytes: std::mem::size_of::<B>() as u64,
        })?;
    let mut out = vec![0.0f32; blocks.len() * QK];
    for (block, chunk) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let mut values = [0.0f32; QK];
        dequantize_block(block, &mut values);
        chunk.copy_from_slice(&values);
    }
    Ok(out)
}

/// Converts the raw bytes of a tensor of type `ggml_type` to f32 values.
///
/// `tensor` names the tensor in error messages. `data` must contain whole blocks.
pub fn dequantize(tensor: &str, ggml_type: GgmlType, data: &[u8]) -> Result<Vec<f32>, GgufError> {
    let partial = |block_bytes: u64| GgufError::InvalidDataLength {
        tensor: tensor.to_string(),
        ggml_type: ggml_type.name(),
        len: data.len() as u64,
        block_bytes,
    };
    match ggml_type {
        GgmlType::F32 if data.len() % 4 == 0 => Ok(decode_le(data, f32::from_le_bytes)),
        GgmlType::F16 if data.len() % 2 == 0 => Ok(decode_le(data, |raw| {
            f16::from_bits(u16::from_le_bytes(raw)).to_f32()
        })),
        GgmlType::BF16 if data.len() % 2 == 0 => Ok(decode_le(data, |raw| {
            bf16::from_bits(u16::from_le_bytes(raw)).to_f32()
        })),
        GgmlType::F32 => Err(partial(4)),
        GgmlType::F16 | GgmlType::BF16 => Err(partial(2)),
        GgmlType::Q8_0 => dequantize_blocks(tensor, ggml_type, data, BlockQ8_0::dequantize),
        GgmlType::Q4_0 => dequantize_blocks(tensor, ggml_type, data, BlockQ4_0::dequantize),
        GgmlType::Q4_1 => dequantize_blocks(tensor, ggml_type, data, BlockQ4_1::dequantize),
        other => Err(GgufError::UnsupportedDequant {
            tensor: tensor.to_string(),
            ggml_type: other.to_string(),
        }),
    }
}
