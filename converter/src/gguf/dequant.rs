//! Dequantization of F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensor data to f32.
//!
//! The block layouts and formulas follow ggml's reference `dequantize_row_*` functions
//! (ggml-quants.c in llama.cpp). The scales are converted from f16 to f32 first, and every
//! product and sum is done in f32 without fused multiply-add, so the results equal ggml's
//! scalar reference bit for bit.

use bytemuck::Pod;
use half::{bf16, f16};
// GGUF's Q8_0, Q4_0 and Q4_1 blocks have the same layout as the runtime's, so the runtime's
// block types (each with its formula and size check) serve both.
pub use tinyllm::quant::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};

use super::cursor::decode_le;
use super::error::GgufError;
use super::ggml_type::GgmlType;

/// Dequantizes whole blocks of type `B` with `dequantize_block`.
fn dequantize_blocks<B: Pod>(
    tensor: &str,
    ggml_type: GgmlType,
    data: &[u8],
    dequantize_block: fn(&B, &mut [f32]),
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
