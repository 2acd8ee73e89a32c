//! Data types of tensors in a `.tllm` file.

use core::fmt;

/// The element type of a tensor, stored as a `u16` code in the tensor table.
///
/// Codes 0-15 are plain floating-point types. Codes from 16 up are reserved for packed
/// block-quantized types (int8 and int4 groups with scales), which a runtime that does not know
/// a code rejects with the tensor's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16: the upper 16 bits of a binary32.
    BF16,
}

impl DType {
    /// Decodes a tensor-table code, or `None` for a code this runtime does not know.
    pub fn from_code(code: u16) -> Option<DType> {
        match code {
            0 => Some(DType::F32),
            1 => Some(DType::F16),
            2 => Some(DType::BF16),
            _ => None,
        }
    }

    /// The tensor-table code.
    pub fn code(self) -> u16 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::BF16 => 2,
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// Byte length of `elements` elements, or `None` on overflow.
    pub fn byte_len(self, elements: u64) -> Option<u64> {
        elements.checked_mul(self.size() as u64)
    }

    /// Lower-case name, as used on the command line (`f32`, `f16`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }

    /// Parses a command-line name (`f32`, `f16`, `bf16`).
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
        f.write_str(self.name())
    }
}
