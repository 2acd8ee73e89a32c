//! The metadata section: a JSON description of the model.
//!
//! JSON keeps the section readable with any tool and lets later format versions add fields.
//! It is parsed once at open and is a few kilobytes even for deep models.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result};

/// Decoder architecture. All three are pre-norm transformers with RMSNorm, RoPE, grouped-query
/// attention and a SwiGLU feed-forward block; they differ in the attention projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Llama and its descendants (SmolLM, Mistral without sliding window): no biases.
    Llama,
    /// Qwen2 and Qwen2.5: bias on the query, key and value projections.
    Qwen2,
    /// Qwen3: RMSNorm on each query and key head before RoPE, no biases.
    Qwen3,
}

impl Architecture {
    /// Parses a name (`llama`, `qwen2`, `qwen3`).
    pub fn from_name(name: &str) -> Result<Architecture> {
        match name {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "qwen3" => Ok(Architecture::Qwen3),
            _ => Err(ErrorKind::UnknownArchitecture { name: name.to_string() }.into()),
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }

    /// Whether the query, key and value projections carry a bias.
    pub fn has_qkv_bias(self) -> bool {
        self == Architecture::Qwen2
    }

    /// Whether each query and key head is RMS-normalized before RoPE.
    pub fn has_qk_norm(self) -> bool {
        self == Architecture::Qwen3
    }
}

/// The pairing of head dimensions that RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeLayout {
    /// Dimension `i` pairs with `i + head_dim / 2` (Hugging Face `rotate_half`, GPT-NeoX).
    Half,
    /// Dimension `2i` pairs with `2i + 1` (GPT-J, and Llama weights as stored in GGUF files).
    Interleaved,
}

/// A change of the RoPE frequencies for long contexts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// Positions divided by `factor`.
    Linear {
        /// Divisor of the positions.
        factor: f64,
    },
    /// Llama 3.1 frequency-dependent scaling: low frequencies divided by `factor`, high ones
    /// kept, a smooth blend between `low_freq_factor` and `high_freq_factor`.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// Wavelength bound (as a divisor of the original context) above which frequencies are scaled.
        low_freq_factor: f64,
        /// Wavelength bound below which frequencies are kept.
        high_freq_factor: f64,
        /// Context length of the original training.
        original_max_position: u32,
    },
}

/// RoPE parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rope {
    /// Base of the frequencies (`rope_theta`).
    pub theta: f64,
    /// Pairing of head dimensions.
    pub layout: RopeLayout,
    /// Optional frequency scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<RopeScaling>,
}

/// Dimensions of one decoder layer. Pruned models have layers that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDims {
    /// Number of query heads.
    pub n_heads: u32,
    /// Number of key/value heads; divides `n_heads`.
    pub n_kv_heads: u32,
    /// Dimension of one head.
    pub head_dim: u32,
    /// Width of the feed-forward block (gate and up projections).
    pub ffn_dim: u32,
}

/// Tokenizer facts kept beside the `tokenizer.json` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// Jinja chat template, as in Hugging Face `tokenizer_config.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    /// Text of the beginning-of-sequence token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token: Option<String>,
    /// Text of the end-of-sequence token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token: Option<String>,
    /// Whether the tokenizer itself inserts BOS when encoding with special tokens.
    #[serde(default)]
    pub add_bos_token: bool,
}

/// The model description stored in the metadata section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Decoder architecture.
    pub architecture: Architecture,
    /// Human-readable model name, when the source had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of rows of the embedding and output matrices.
    pub vocab_size: u32,
    /// Width of the residual stream.
    pub hidden_dim: u32,
    /// Maximum context length the model was trained for.
    pub max_context: u32,
    /// Epsilon of every RMSNorm.
    pub norm_eps: f64,
    /// Whether the output head reuses the token embedding matrix.
    pub tie_embeddings: bool,
    /// RoPE parameters.
    pub rope: Rope,
    /// Beginning-of-sequence token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// Token ids that end generation.
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    /// Padding token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Per-layer dimensions, one entry per decoder layer.
    pub layers: Vec<LayerDims>,
    /// Tokenizer facts; the tokenizer itself is in the tokenizer section.
    #[serde(default)]
    pub tokenizer: TokenizerInfo,
    /// The origin of the model (file name and converter version), shown by `inspect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Upper bound on any single dimension. It keeps products of a few dimensions far from
/// overflow and rejects absurd values from a corrupt file before anything is allocated.
pub const MAX_DIM: u32 = 1 << 24;

/// Upper bound on the number of layers.
pub const MAX_LAYERS: usize = 4096;

impl Metadata {
    /// Parses the metadata JSON and checks every value.
    pub fn parse(json: &[u8]) -> Result<Metadata> {
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|error| ErrorKind::InvalidMetadata { message: format!("{error}") })?;
        // Name an unknown architecture directly rather than as a serde "unknown variant".
        if let Some(name) = value.get("architecture").and_then(serde_json::Value::as_str) {
            Architecture::from_name(name)?;
        }
        let metadata: Metadata = serde_json::from_value(value)
            .map_err(|error| ErrorKind::InvalidMetadata { message: format!("{error}") })?;
        metadata.validate()?;
        Ok(metadata)
    }

    /// Encodes the metadata as pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of numbers and strings cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Checks ranges and consistency: non-zero dimensions below [`MAX_DIM`], heads divisible
    /// by KV heads, even head dimension, finite positive RoPE base and norm epsilon, special
    /// token ids inside the vocabulary.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &str, value: String, expected: &str| -> crate::error::Error {
            ErrorKind::InvalidValue { field: field.to_string(), value, expected: expected.to_string() }.into()
        };
        let in_range = |value: u32| value > 0 && value <= MAX_DIM;
        for (field, value) in [("vocab_size", self.vocab_size), ("hidden_dim", self.hidden_dim), ("max_context", self.max_context)] {
            if !in_range(value) {
                return Err(invalid(field, value.to_string(), "between 1 and 16777216"));
            }
        }
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(invalid("layers", format!("{} entries", self.layers.len()), "1 to 4096 layers"));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            self.validate_layer(i, layer)?;
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return Err(invalid("norm_eps", format!("{}", self.norm_eps), "a finite value in (0, 1)"));
        }
        if !(self.rope.theta.is_finite() && self.rope.theta > 1.0) {
            return Err(invalid("rope.theta", format!("{}", self.rope.theta), "a finite value above 1"));
        }
        if let Some(scaling) = self.rope.scaling {
            let factor = match scaling {
                RopeScaling::Linear { factor } => factor,
                RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position } => {
                    if !(low_freq_factor.is_finite() && high_freq_factor.is_finite() && high_freq_factor > low_freq_factor && low_freq_factor > 0.0) {
                        return Err(invalid(
                            "rope.scaling",
                            format!("low_freq_factor {low_freq_factor}, high_freq_factor {high_freq_factor}"),
                            "finite factors with 0 < low_freq_factor < high_freq_factor",
                        ));
                    }
                    if original_max_position == 0 {
                        return Err(invalid("rope.scaling.original_max_position", "0".to_string(), "a positive context length"));
                    }
                    factor
                }
            };
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(invalid("rope.scaling.factor", format!("{factor}"), "a finite value of at least 1"));
            }
        }
        let ids = self.bos_token_id.iter().chain(self.eos_token_ids.iter()).chain(self.pad_token_id.iter());
        for &id in ids {
            if id >= self.vocab_size {
                return Err(invalid("special token id", id.to_string(), "an id below vocab_size"));
            }
        }
        Ok(())
    }

    fn validate_layer(&self, i: usize, layer: &LayerDims) -> Result<()> {
        let field = |name: &str| format!("layers[{i}].{name}");
        let invalid = |name: &str, value: u32, expected: String| -> crate::error::Error {
            ErrorKind::InvalidValue { field: field(name), value: value.to_string(), expected }.into()
        };
        let dims = [("n_heads", layer.n_heads), ("n_kv_heads", layer.n_kv_heads), ("head_dim", layer.head_dim), ("ffn_dim", layer.ffn_dim)];
        for (name, value) in dims {
            if value == 0 || value > MAX_DIM {
                return Err(invalid(name, value, "between 1 and 16777216".to_string()));
            }
        }
        if layer.n_heads % layer.n_kv_heads != 0 {
            return Err(invalid("n_kv_heads", layer.n_kv_heads, format!("a divisor of n_heads ({})", layer.n_heads)));
        }
        if layer.head_dim % 2 != 0 {
            return Err(invalid("head_dim", layer.head_dim, "an even number (RoPE rotates pairs)".to_string()));
        }
        if (layer.n_heads as u64) * (layer.head_dim as u64) > MAX_DIM as u64 {
            return Err(invalid("n_heads", layer.n_heads, format!("n_heads * head_dim at most {MAX_DIM}")));
        }
        Ok(())
    }

    /// Number of decoder layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
}
