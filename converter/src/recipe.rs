//! The choice of element type for each tensor: float type, quantization preset and
//! per-tensor overrides.

use tinyllm::quant::{QuantFormat, QuantType};
use tinyllm::DType;

/// A quantization preset for the weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Every matrix in the float type of `--dtype`.
    Float,
    /// Every matrix in one block format.
    Uniform(QuantFormat),
    /// The default mix: Q4_0 for the FFN gate and up projections, which hold most of the
    /// weights, and Q8_0 for the token embeddings, the output head, the attention projections
    /// and the FFN down projection (docs/benchmarks.md gives the measurements behind it).
    Mix,
    /// Matrices keep the GGUF block format they have (Q8_0, Q4_0, Q4_1) without
    /// requantization; float matrices take `--dtype`.
    Source,
}

impl Preset {
    /// Parses a `--quant` value: `q8`, `q4`, `q4-minmax`, `q4-g128`, `q4-g64`, `mix`, `source`,
    /// `none`.
    pub fn from_name(name: &str) -> Option<Preset> {
        Some(match name {
            "none" => Preset::Float,
            "q8" => Preset::Uniform(QuantFormat::Q8_0),
            "q4" => Preset::Uniform(QuantFormat::Q4_0),
            "q4-g128" => Preset::Uniform(QuantFormat::Q4_0G128),
            "q4-g64" => Preset::Uniform(QuantFormat::Q4_0G64),
            "q4-minmax" => Preset::Uniform(QuantFormat::Q4_1),
            "mix" => Preset::Mix,
            "source" => Preset::Source,
            _ => return None,
        })
    }
}

/// Parses an element type named on the command line: `f32`, `f16`, `bf16` or a block format.
pub fn parse_type(name: &str) -> Option<TypeChoice> {
    if let Some(dtype) = DType::from_name(name) {
        return Some(TypeChoice::Float(dtype));
    }
    let format = match name {
        "q8" => QuantFormat::Q8_0,
        "q4" => QuantFormat::Q4_0,
        "q4-minmax" => QuantFormat::Q4_1,
        "q4-g128" => QuantFormat::Q4_0G128,
        "q4-g64" => QuantFormat::Q4_0G64,
        other => QuantFormat::from_name(other)?,
    };
    Some(TypeChoice::Quant(format))
}

/// A type for one tensor, before the row interleave is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChoice {
    /// A float type.
    Float(DType),
    /// A block format.
    Quant(QuantFormat),
}

/// `PATTERN=TYPE`: tensors whose `.tllm` name matches `PATTERN` (`*` matches any text) get
/// `TYPE`. Later overrides win over earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// Glob over tensor names, for example `token_embd` or `layers.*.ffn_down`.
    pub pattern: String,
    /// The type to use.
    pub choice: TypeChoice,
}

impl Override {
    /// Parses `PATTERN=TYPE`.
    pub fn parse(text: &str) -> Result<Override, String> {
        let (pattern, name) = text.split_once('=').ok_or_else(|| format!("override \"{text}\" is not PATTERN=TYPE, for example token_embd=q8_0"))?;
        let choice = parse_type(name).ok_or_else(|| format!("unknown type \"{name}\" in override \"{text}\"; expected f32, f16, bf16, q8_0, q4_0, q4_0_g128, q4_0_g64 or q4_1"))?;
        Ok(Override { pattern: pattern.to_string(), choice })
    }
}

/// Reports whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Everything that decides tensor types.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// Float type of matrices that are not quantized.
    pub float: DType,
    /// The preset.
    pub preset: Preset,
    /// Per-tensor overrides, applied after the preset.
    pub overrides: Vec<Override>,
    /// Row interleave of quantized matrices with at least that many rows: 1 or 4.
    pub interleave: u8,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe { float: DType::F32, preset: Preset::Float, overrides: Vec::new(), interleave: 4 }
    }
}

fn mix_format(name: &str) -> QuantFormat {
    let four_bit = name.ends_with(".ffn_gate") || name.ends_with(".ffn_up");
    if four_bit { QuantFormat::Q4_0 } else { QuantFormat::Q8_0 }
}

/// Larger groups save size only when they do not pad much: a row of 576 weights takes five
/// 128-groups (330 bytes), nine 64-groups (306 bytes) or eighteen 32-groups (324 bytes). Q4_0
/// with groups of 128 or 64 falls back, per matrix, to the smallest of the groups up to the
/// requested one.
fn smaller_group(format: QuantFormat, shape: &[u64]) -> QuantFormat {
    let candidates: &[QuantFormat] = match format {
        QuantFormat::Q4_0G128 => &[QuantFormat::Q4_0G128, QuantFormat::Q4_0G64, QuantFormat::Q4_0],
        QuantFormat::Q4_0G64 => &[QuantFormat::Q4_0G64, QuantFormat::Q4_0],
        _ => return format,
    };
    let bytes = |f: &QuantFormat| f.blocks_per_row(shape[1]) * f.block_bytes() as u64;
    candidates.iter().min_by_key(|f| bytes(f)).copied().unwrap_or(format)
}

impl Recipe {
    /// The type of tensor `name` of `shape`. Vectors (norm weights, biases) are always f32.
    /// `source_format` is the GGUF block format the tensor has, if any.
    pub fn dtype_for(&self, name: &str, shape: &[u64], source_format: Option<QuantFormat>) -> DType {
        if shape.len() != 2 {
            return DType::F32;
        }
        let mut choice = match self.preset {
            Preset::Float => TypeChoice::Float(self.float),
            Preset::Uniform(format) => TypeChoice::Quant(format),
            Preset::Mix => TypeChoice::Quant(mix_format(name)),
            Preset::Source => source_format.map_or(TypeChoice::Float(self.float), TypeChoice::Quant),
        };
        for rule in &self.overrides {
            if glob_match(&rule.pattern, name) {
                choice = rule.choice;
            }
        }
        match choice {
            TypeChoice::Float(dtype) => dtype,
            TypeChoice::Quant(format) => {
                let interleave = if shape[0] >= u64::from(self.interleave) { self.interleave } else { 1 };
                DType::Quant(QuantType { format: smaller_group(format, shape), interleave })
            }
        }
    }
}
