//! ggml tensor types: ids, names and block layouts.
//!
//! Ids and block sizes follow `enum ggml_type` in ggml.h and the block structs in ggml-common.h
//! of llama.cpp (checked against the 2025-2026 sources). Ids 4, 5, 31-33 and 36-38 belong to
//! types that ggml removed, so they read as [`GgmlType::Unknown`].

/// A ggml tensor element type.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half float (id 1).
    F16,
    /// 4-bit, 32 per block, one f16 scale (id 2).
    Q4_0,
    /// 4-bit, 32 per block, f16 scale and f16 minimum (id 3).
    Q4_1,
    /// 5-bit, 32 per block, one f16 scale (id 6).
    Q5_0,
    /// 5-bit, 32 per block, f16 scale and f16 minimum (id 7).
    Q5_1,
    /// 8-bit, 32 per block, one f16 scale (id 8).
    Q8_0,
    /// 8-bit, 32 per block, f16 scale and f16 scaled sum (id 9).
    Q8_1,
    /// 2-bit k-quant, 256 per super-block (id 10).
    Q2_K,
    /// 3-bit k-quant, 256 per super-block (id 11).
    Q3_K,
    /// 4-bit k-quant, 256 per super-block (id 12).
    Q4_K,
    /// 5-bit k-quant, 256 per super-block (id 13).
    Q5_K,
    /// 6-bit k-quant, 256 per super-block (id 14).
    Q6_K,
    /// 8-bit k-quant with f32 scale, 256 per super-block (id 15).
    Q8_K,
    /// Id 16.
    IQ2_XXS,
    /// Id 17.
    IQ2_XS,
    /// Id 18.
    IQ3_XXS,
    /// Id 19.
    IQ1_S,
    /// Id 20.
    IQ4_NL,
    /// Id 21.
    IQ3_S,
    /// Id 22.
    IQ2_S,
    /// Id 23.
    IQ4_XS,
    /// 8-bit signed integer (id 24).
    I8,
    /// 16-bit signed integer (id 25).
    I16,
    /// 32-bit signed integer (id 26).
    I32,
    /// 64-bit signed integer (id 27).
    I64,
    /// 64-bit float (id 28).
    F64,
    /// Id 29.
    IQ1_M,
    /// bfloat16 (id 30).
    BF16,
    /// Ternary, 256 per block (id 34).
    TQ1_0,
    /// Ternary, 256 per block (id 35).
    TQ2_0,
    /// 4-bit E2M1 with one E8M0 scale, 32 per block (id 39).
    MXFP4,
    /// 4-bit E2M1 with four E4M3 scales, 64 per block (id 40).
    NVFP4,
    /// 1-bit, 128 per block, one f16 scale (id 41).
    Q1_0,
    /// A type id this reader does not know.
    Unknown(u32),
}

impl GgmlType {
    /// Converts a type id from the file. Unknown ids become [`GgmlType::Unknown`].
    pub fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            15 => GgmlType::Q8_K,
            16 => GgmlType::IQ2_XXS,
            17 => GgmlType::IQ2_XS,
            18 => GgmlType::IQ3_XXS,
            19 => GgmlType::IQ1_S,
            20 => GgmlType::IQ4_NL,
            21 => GgmlType::IQ3_S,
            22 => GgmlType::IQ2_S,
            23 => GgmlType::IQ4_XS,
            24 => GgmlType::I8,
            25 => GgmlType::I16,
            26 => GgmlType::I32,
            27 => GgmlType::I64,
            28 => GgmlType::F64,
            29 => GgmlType::IQ1_M,
            30 => GgmlType::BF16,
            34 => GgmlType::TQ1_0,
            35 => GgmlType::TQ2_0,
            39 => GgmlType::MXFP4,
            40 => GgmlType::NVFP4,
            41 => GgmlType::Q1_0,
            other => GgmlType::Unknown(other),
        }
    }

    /// Returns the type id stored in GGUF files.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::Q8_K => 15,
            GgmlType::IQ2_XXS => 16,
            GgmlType::IQ2_XS => 17,
            GgmlType::IQ3_XXS => 18,
            GgmlType::IQ1_S => 19,
            GgmlType::IQ4_NL => 20,
            GgmlType::IQ3_S => 21,
            GgmlType::IQ2_S => 22,
            GgmlType::IQ4_XS => 23,
            GgmlType::I8 => 24,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::I64 => 27,
            GgmlType::F64 => 28,
            GgmlType::IQ1_M => 29,
            GgmlType::BF16 => 30,
            GgmlType::TQ1_0 => 34,
            GgmlType::TQ2_0 => 35,
            GgmlType::MXFP4 => 39,
            GgmlType::NVFP4 => 40,
            GgmlType::Q1_0 => 41,
            GgmlType::Unknown(id) => id,
        }
    }

    /// Returns ggml's name for the type in upper case (`"Q4_1"`, `"BF16"`), or `"unknown"`.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::Q8_K => "Q8_K",
            GgmlType::IQ2_XXS => "IQ2_XXS",
            GgmlType::IQ2_XS => "IQ2_XS",
            GgmlType::IQ3_XXS => "IQ3_XXS",
            GgmlType::IQ1_S => "IQ1_S",
            GgmlType::IQ4_NL => "IQ4_NL",
            GgmlType::IQ3_S => "IQ3_S",
            GgmlType::IQ2_S => "IQ2_S",
            GgmlType::IQ4_XS => "IQ4_XS",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
            GgmlType::IQ1_M => "IQ1_M",
            GgmlType::BF16 => "BF16",
            GgmlType::TQ1_0 => "TQ1_0",
            GgmlType::TQ2_0 => "TQ2_0",
            GgmlType::MXFP4 => "MXFP4",
            GgmlType::NVFP4 => "NVFP4",
            GgmlType::Q1_0 => "Q1_0",
            GgmlType::Unknown(_) => "unknown",
        }
    }

    /// Returns `(elements per block, bytes per block)`, or `None` for [`GgmlType::Unknown`].
    pub fn block_layout(self) -> Option<(u64, u64)> {
        Some(match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q8_1 => (32, 36),
            GgmlType::Q2_K => (256, 84),
            GgmlType::Q3_K => (256, 110),
            GgmlType::Q4_K => (256, 144),
            GgmlType::Q5_K => (256, 176),
            GgmlType::Q6_K => (256, 210),
            GgmlType::Q8_K => (256, 292),
            GgmlType::IQ2_XXS => (256, 66),
            GgmlType::IQ2_XS => (256, 74),
            GgmlType::IQ3_XXS => (256, 98),
            GgmlType::IQ1_S => (256, 50),
            GgmlType::IQ4_NL => (32, 18),
            GgmlType::IQ3_S => (256, 110),
            GgmlType::IQ2_S => (256, 82),
            GgmlType::IQ4_XS => (256, 136),
            GgmlType::I8 => (1, 1),
            GgmlType::I16 => (1, 2),
            GgmlType::I32 => (1, 4),
            GgmlType::I64 => (1, 8),
            GgmlType::F64 => (1, 8),
            GgmlType::IQ1_M => (256, 56),
            GgmlType::BF16 => (1, 2),
            GgmlType::TQ1_0 => (256, 54),
            GgmlType::TQ2_0 => (256, 66),
            GgmlType::MXFP4 => (32, 17),
            GgmlType::NVFP4 => (64, 36),
            GgmlType::Q1_0 => (128, 18),
            GgmlType::Unknown(_) => return None,
        })
    }
}

impl std::fmt::Display for GgmlType {
    /// Writes the ggml name, and the id for unknown types.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GgmlType::Unknown(id) => write!(f, "unknown type id {id}"),
            known => f.write_str(known.name()),
        }
    }
}
