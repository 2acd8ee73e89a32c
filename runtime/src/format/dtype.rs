//! Data types of tensors in a `.tllm` file.

use core::fmt;

use crate::quant::{QuantFormat, QuantType};

/// The element type of a tensor, stored as a `u16` code in the tensor table.
///
/// Codes 0-15 are plain floating-point types. Codes from 16 up are block-quantized matrices:
/// the low byte names the block format, the high byte the row interleave (0 for plain rows,
/// 4 for groups of four rows). A runtime rejects a code it does not know and names the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: the upper 16 bits of a binary32.
    BF16,
    /// A block-quantized matrix.
    Quant(QuantType),
}

impl DType {
    /// Decodes a tensor-table code, or `None` for a code this runtime does not know.
    pub fn from_code(code: u16) -> Option<DType> {
        match code {
            0 => Some(DType::F32),
            1 => Some(DType::F16),
            2 => Some(DType::BF16),
            _ => {
                let format = QuantFormat::from_code((code & 0xFF) as u8)?;
                let interleave = match code >> 8 {
                    0 => 1,
                    4 => 4,
                    _ => return None,
                };
                Some(DType::Quant(QuantType { format, interleave }))
            }
        }
    }

    /// The tensor-table code.
    pub fn code(self) -> u16 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
            DType::Quant(q) => u16::from(q.format.code()) | if q.interleave == 1 { 0 } else { u16::from(q.interleave) << 8 },
        }
    }

    /// Alignment the elements need in memory: the element size for float types, 1 for
    /// quantized blocks.
    pub fn alignment(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Quant(_) => 1,
        }
    }

    /// Byte length of a tensor of `shape`, or `None` on overflow or when the type does not fit
    /// the shape (quantized types need a matrix).
    pub fn byte_len(self, shape: &[u64]) -> Option<u64> {
        let elements = shape.iter().try_fold(1u64, |acc, &dim| acc.checked_mul(dim))?;
        match self {
            DType::F32 => elements.checked_mul(4),
            DType::F16 | DType::BF16 => elements.checked_mul(2),
            DType::Quant(q) => match shape {
                [rows, cols] => q.byte_len(*rows, *cols),
                _ => None,
            },
        }
    }

    /// Whether this is a block-quantized type.
    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Quant(_))
    }

    /// Parses a float type name (`f32`, `f16`, `bf16`).
    pub fn from_name(name: &str) -> Option<DType> {
        match name {
            "f32" => Some(DType::F32),
            "f16" => Some(DType::F16),
            "bf16" => Some(DType::BF16),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::F32 => f.write_str("f32"),
            DType::F16 => f.write_str("f16"),
            DType::BF16 => f.write_str("bf16"),
            DType::Quant(q) => write!(f, "{q}"),
        }
    }
}
