//! Saves a model as a Hugging Face directory and as a `.tllm` file.

use std::path::Path;

use serde_json::{json, Value};
use tinyllm::format::metadata::RopeScaling;
use tinyllm::format::{Architecture, Metadata};
use tinyllm_convert::{convert, ConvertOptions};

use super::{params, Decoder};
use crate::atomic;
use crate::error::{Result, TrainError};

/// Builds the transformers `config.json`. Layers that differ are listed in `tinyllm_layers`
/// (read by tinyllm-convert), and the top-level sizes then describe layer 0; transformers
/// itself cannot build such a model.
pub fn hf_config(metadata: &Metadata) -> Value {
    let first = metadata.layers[0];
    let (class, model_type) = match metadata.architecture {
        Architecture::Llama => ("LlamaForCausalLM", "llama"),
        Architecture::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
        Architecture::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
    };
    let mut config = json!({
        "architectures": [class],
        "model_type": model_type,
        "hidden_size": metadata.hidden_dim,
        "intermediate_size": first.ffn_dim,
        "num_hidden_layers": metadata.layers.len(),
        "num_attention_heads": first.n_heads,
        "num_key_value_heads": first.n_kv_heads,
        "head_dim": first.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": metadata.max_context,
        "rms_norm_eps": metadata.norm_eps,
        "rope_theta": metadata.rope.theta,
        "tie_word_embeddings": metadata.tie_embeddings,
        "vocab_size": metadata.vocab_size,
        "attention_bias": metadata.architecture.has_qkv_bias(),
        "attention_dropout": 0.0,
        "torch_dtype": "float32",
        "use_cache": true,
        "bos_token_id": metadata.bos_token_id,
        "eos_token_id": eos_value(metadata),
        "pad_token_id": metadata.pad_token_id,
    });
    if metadata.architecture == Architecture::Llama {
        config["mlp_bias"] = json!(false);
    }
    config["rope_scaling"] = match metadata.rope.scaling {
        None => Value::Null,
        Some(RopeScaling::Linear { factor }) => json!({ "rope_type": "linear", "factor": factor }),
        Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position }) => json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position,
        }),
    };
    if metadata.layers.iter().any(|l| *l != first) {
        config["tinyllm_layers"] = json!(metadata.layers);
    }
    config
}

fn eos_value(metadata: &Metadata) -> Value {
    match metadata.eos_token_ids.as_slice() {
        [] => Value::Null,
        [one] => json!(one),
        many => json!(many),
    }
}

fn tokenizer_config(metadata: &Metadata) -> Value {
    let info = &metadata.tokenizer;
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": info.bos_token,
        "eos_token": info.eos_token,
        "add_bos_token": info.add_bos_token,
        "chat_template": info.chat_template,
        "model_max_length": metadata.max_context,
        "clean_up_tokenization_spaces": false,
    })
}

fn generation_config(metadata: &Metadata) -> Value {
    json!({
        "bos_token_id": metadata.bos_token_id,
        "eos_token_id": eos_value(metadata),
        "pad_token_id": metadata.pad_token_id,
    })
}

fn pretty(value: &Value) -> Vec<u8> {
    // Serializing a serde_json::Value cannot fail.
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// Writes the files of a Hugging Face directory into `dir`, which must exist.
fn write_hf_files(model: &Decoder, dir: &Path) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).map_err(|e| TrainError::io(&dir.join(name), e));
    write("config.json", &pretty(&hf_config(&model.metadata)))?;
    write("generation_config.json", &pretty(&generation_config(&model.metadata)))?;
    write("tokenizer_config.json", &pretty(&tokenizer_config(&model.metadata)))?;
    if let Some(tokenizer) = &model.tokenizer_json {
        write("tokenizer.json", tokenizer)?;
    }
    let tensors: Vec<(String, candle_core::Tensor)> = model.vars().map(|(name, var)| (params::hf_name(name), var.as_detached_tensor())).collect();
    write("model.safetensors", &crate::safetensors_io::encode(&tensors)?)
}

/// Saves `model` as a Hugging Face directory (config.json, model.safetensors in f32,
/// tokenizer.json when the model has a tokenizer, tokenizer_config.json,
/// generation_config.json), built under a temporary name and renamed into place.
pub fn save_hf(model: &Decoder, dir: &Path) -> Result<()> {
    atomic::write_dir_with(dir, |temp| write_hf_files(model, temp))
}

/// Saves `model` as a `.tllm` file with f32 matrices, through tinyllm-convert, which writes a
/// temporary file, opens it with the runtime and renames it into place. The model needs a
/// tokenizer, because a `.tllm` file embeds one.
pub fn save_tllm(model: &Decoder, path: &Path) -> Result<()> {
    if model.tokenizer_json.is_none() {
        return Err(TrainError::Incompatible {
            message: format!("cannot write {}: the model has no tokenizer.json; load it from a directory or GGUF that has one", path.display()),
        });
    }
    let staging = atomic::temporary_path(&path.with_extension("hf"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| TrainError::io(&staging, e))?;
    let result = write_hf_files(model, &staging).and_then(|()| {
        convert(&staging, path, &ConvertOptions::float(tinyllm::DType::F32)).map(|_| ()).map_err(|source| TrainError::Convert { path: staging.clone(), source })
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}
