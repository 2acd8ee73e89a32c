//! Reads a GGUF file as a source model: metadata from the `{arch}.*` keys, tensors
//! dequantized by the GGUF reader, tokenizer rebuilt as a Hugging Face `tokenizer.json`.

use std::path::Path;

use tinyllm::format::metadata::{Rope, RopeLayout, RopeScaling};
use tinyllm::format::{Architecture, LayerDims, Metadata, TokenizerInfo};

use crate::error::{ConvertError, Result};
use crate::gguf::{special_tokens, tokenizer_json_from_gguf, GgmlType, GgufError, GgufFile};
use crate::source::{Backing, Location, SourceModel, SourceTensor};

/// GGUF tensor types the converter reads.
pub const SUPPORTED_TYPES: [GgmlType; 6] = [GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1];

/// Maps a GGUF tensor name (`blk.3.attn_q.weight`) to its `.tllm` name (`layers.3.attn_q`).
fn tllm_name(name: &str) -> Option<String> {
    let (stem, bias) = if let Some(stem) = name.strip_suffix(".weight") {
        (stem, false)
    } else {
        (name.strip_suffix(".bias")?, true)
    };
    let base = if let Some(rest) = stem.strip_prefix("blk.") {
        let (layer, short) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        let known = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];
        if !known.contains(&short) {
            return None;
        }
        format!("layers.{layer}.{short}")
    } else {
        match stem {
            "token_embd" | "output_norm" | "output" => stem.to_string(),
            _ => return None,
        }
    };
    Some(if bias { format!("{base}_bias") } else { base })
}

/// A per-layer value that GGUF stores either once for all layers or as an array.
fn per_layer(gguf: &GgufFile, key: &str, n_layers: usize) -> std::result::Result<Vec<u32>, GgufError> {
    if let Ok(values) = gguf.get_i64_array(key) {
        if values.len() != n_layers {
            return Err(GgufError::ValueOutOfRange { key: key.to_string(), value: format!("an array of {} values", values.len()), target: "one value per layer" });
        }
        return values
            .into_iter()
            .map(|v| u32::try_from(v).map_err(|_| GgufError::ValueOutOfRange { key: key.to_string(), value: v.to_string(), target: "u32" }))
            .collect();
    }
    Ok(vec![gguf.get_u32(key)?; n_layers])
}

fn read_metadata(gguf: &GgufFile, path: &Path) -> std::result::Result<Metadata, ConvertError> {
    let wrap = |source: GgufError| ConvertError::Gguf { path: path.to_path_buf(), source };
    let arch_name = gguf.get_str("general.architecture").map_err(wrap)?;
    let architecture = match arch_name {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
        other => return Err(ConvertError::UnknownArchitecture { path: path.to_path_buf(), name: other.into() }),
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let hidden = gguf.get_u32(&key("embedding_length")).map_err(wrap)?;
    let n_layers = gguf.get_u32(&key("block_count")).map_err(wrap)? as usize;
    if n_layers == 0 || n_layers > tinyllm::format::metadata::MAX_LAYERS {
        return Err(ConvertError::InvalidField { path: path.to_path_buf(), field: key("block_count"), value: n_layers.to_string(), expected: "1 to 4096".into() });
    }
    let heads = per_layer(gguf, &key("attention.head_count"), n_layers).map_err(wrap)?;
    let kv_heads = if gguf.get(&key("attention.head_count_kv")).is_some() {
        per_layer(gguf, &key("attention.head_count_kv"), n_layers).map_err(wrap)?
    } else {
        heads.clone()
    };
    let ffn = per_layer(gguf, &key("feed_forward_length"), n_layers).map_err(wrap)?;
    let head_dim_key = key("attention.key_length");
    let explicit_head_dim = if gguf.get(&head_dim_key).is_some() { Some(gguf.get_u32(&head_dim_key).map_err(wrap)?) } else { None };
    let mut layers = Vec::with_capacity(n_layers);
    for i in 0..n_layers {
        let head_dim = match explicit_head_dim {
            Some(d) => d,
            None if heads[i] > 0 => hidden / heads[i],
            None => 0,
        };
        layers.push(LayerDims { n_heads: heads[i], n_kv_heads: kv_heads[i], head_dim, ffn_dim: ffn[i] });
    }

    let embd = gguf.tensor("token_embd.weight").ok_or_else(|| wrap(GgufError::MissingKey { key: "tensor token_embd.weight".into() }))?;
    let vocab_size = embd.dims.get(1).copied().unwrap_or(0);
    let vocab_size = u32::try_from(vocab_size).unwrap_or(u32::MAX);

    let scaling = match gguf.get_str(&key("rope.scaling.type")).ok() {
        None | Some("none") => None,
        Some("linear") => Some(RopeScaling::Linear { factor: gguf.get_f64(&key("rope.scaling.factor")).map_err(wrap)? }),
        Some(other) => {
            return Err(ConvertError::InvalidField { path: path.to_path_buf(), field: key("rope.scaling.type"), value: other.into(), expected: "none or linear".into() })
        }
    };
    // llama.cpp's converter reorders the Llama query and key rows so that RoPE rotates
    // adjacent pairs; Qwen models keep the Hugging Face order, which pairs i with i + d/2.
    let layout = if architecture == Architecture::Llama { RopeLayout::Interleaved } else { RopeLayout::Half };
    let rope_theta = if gguf.get(&key("rope.freq_base")).is_some() { gguf.get_f64(&key("rope.freq_base")).map_err(wrap)? } else { 10000.0 };

    let chat = special_tokens(gguf).map_err(wrap)?;
    let token_text = |id: Option<u32>| -> Option<String> {
        let tokens = gguf.get_str_array("tokenizer.ggml.tokens").ok()?;
        tokens.get(id? as usize).cloned()
    };
    let metadata = Metadata {
        architecture,
        name: gguf.get_str("general.name").ok().map(String::from),
        vocab_size,
        hidden_dim: hidden,
        max_context: gguf.get_u32(&key("context_length")).map_err(wrap)?,
        norm_eps: gguf.get_f64(&key("attention.layer_norm_rms_epsilon")).map_err(wrap)?,
        tie_embeddings: gguf.tensor("output.weight").is_none(),
        rope: Rope { theta: rope_theta, layout, scaling },
        bos_token_id: chat.bos,
        eos_token_ids: chat.eos.into_iter().collect(),
        pad_token_id: chat.pad,
        layers,
        tokenizer: TokenizerInfo {
            chat_template: chat.chat_template.clone(),
            bos_token: token_text(chat.bos),
            eos_token: token_text(chat.eos),
            add_bos_token: chat.add_bos,
        },
        source: None,
    };
    metadata.validate().map_err(|source| ConvertError::Model { path: path.to_path_buf(), source })?;
    Ok(metadata)
}

/// Opens a GGUF file as a source model.
pub fn open(path: &Path) -> Result<SourceModel> {
    let gguf = GgufFile::open(path).map_err(|source| ConvertError::Gguf { path: path.to_path_buf(), source })?;
    from_file(gguf, path)
}

/// Turns a parsed GGUF file into a source model; `path` names it in errors.
pub fn from_file(gguf: GgufFile, path: &Path) -> Result<SourceModel> {
    let wrap = |source: GgufError| ConvertError::Gguf { path: path.to_path_buf(), source };
    // Unsupported tensor types are reported first: no other fix makes such a file convert.
    if let Some(info) = gguf.tensors().iter().find(|t| !SUPPORTED_TYPES.contains(&t.ggml_type)) {
        return Err(ConvertError::UnsupportedTensorType {
            path: path.to_path_buf(),
            name: info.name.clone(),
            dtype: info.ggml_type.name().to_string(),
            supported: "F32, F16, BF16, Q8_0, Q4_0, Q4_1".into(),
        });
    }
    let metadata = read_metadata(&gguf, path)?;
    let tokenizer_json = tokenizer_json_from_gguf(&gguf).map_err(wrap)?.into_bytes();

    let mut tensors = Vec::new();
    for (index, info) in gguf.tensors().iter().enumerate() {
        let name = tllm_name(&info.name).ok_or_else(|| ConvertError::UnexpectedTensor { path: path.to_path_buf(), name: info.name.clone() })?;
        tensors.push(SourceTensor {
            name,
            source_name: info.name.clone(),
            // GGUF lists the fastest-varying dimension first; .tllm lists the outermost first.
            shape: info.dims.iter().rev().copied().collect(),
            source_type: info.ggml_type.name().to_string(),
            location: Location::Gguf { index },
        });
    }
    let tensors = crate::order::canonical_order(tensors);
    Ok(SourceModel { path: path.to_path_buf(), metadata, tokenizer_json, tensors, backing: Backing::Gguf(Box::new(gguf)) })
}
