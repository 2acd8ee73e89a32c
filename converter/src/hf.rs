//! Reads a Hugging Face model directory: config.json, safetensors (single or sharded),
//! tokenizer.json, tokenizer_config.json and generation_config.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tinyllm::format::metadata::{Rope, RopeLayout, RopeScaling};
use tinyllm::format::{Architecture, LayerDims, Metadata, TokenizerInfo};
use tinyllm::DType;

use crate::error::{ConvertError, Result};
use crate::source::{Backing, Location, SourceModel, SourceTensor};

/// Reads a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).map_err(|e| ConvertError::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| ConvertError::InvalidJson { path: path.to_path_buf(), message: e.to_string() })
}

/// Typed access to the fields of one JSON configuration file, with errors that name it.
struct Config<'a> {
    path: &'a Path,
    value: &'a Value,
}

impl Config<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        self.value.get(field).filter(|v| !v.is_null())
    }

    fn invalid(&self, field: &str, value: &Value, expected: &str) -> ConvertError {
        ConvertError::InvalidField { path: self.path.to_path_buf(), field: field.into(), value: value.to_string(), expected: expected.into() }
    }

    fn u32_opt(&self, field: &str) -> Result<Option<u32>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| self.invalid(field, v, "a non-negative integer below 2^32")),
        }
    }

    fn u32(&self, field: &str) -> Result<u32> {
        self.u32_opt(field)?.ok_or_else(|| ConvertError::MissingField { path: self.path.to_path_buf(), field: field.into() })
    }

    fn f64_or(&self, field: &str, default: f64) -> Result<f64> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.invalid(field, v, "a number")),
        }
    }

    fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        match self.get(field) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.invalid(field, v, "true or false")),
        }
    }

    /// A token id or a list of them.
    fn ids(&self, field: &str) -> Result<Vec<u32>> {
        match self.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| self.invalid(field, v, "token ids")))
                .collect(),
            Some(v) => Ok(vec![v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| self.invalid(field, v, "a token id or a list of them"))?]),
        }
    }
}

/// Reads the model description from `config.json` (and `generation_config.json` when present).
pub fn read_metadata(dir: &Path) -> Result<Metadata> {
    let config_path = dir.join("config.json");
    let value = read_json(&config_path)?;
    let config = Config { path: &config_path, value: &value };

    let model_type = config.get("model_type").and_then(Value::as_str).ok_or_else(|| ConvertError::MissingField { path: config_path.clone(), field: "model_type".into() })?;
    let architecture = match model_type {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
        other => return Err(ConvertError::UnknownArchitecture { path: config_path.clone(), name: other.into() }),
    };

    let hidden = config.u32("hidden_size")?;
    let n_layers = config.u32("num_hidden_layers")?;
    let n_heads = config.u32("num_attention_heads")?;
    let n_kv_heads = config.u32_opt("num_key_value_heads")?.unwrap_or(n_heads);
    let head_dim = match config.u32_opt("head_dim")? {
        Some(d) => d,
        None if n_heads > 0 && hidden % n_heads == 0 => hidden / n_heads,
        None => return Err(config.invalid("num_attention_heads", &Value::from(n_heads), "a divisor of hidden_size when head_dim is absent")),
    };
    let ffn_dim = config.u32("intermediate_size")?;
    if n_layers as usize > tinyllm::format::metadata::MAX_LAYERS {
        return Err(config.invalid("num_hidden_layers", &Value::from(n_layers), "at most 4096"));
    }
    let uniform = LayerDims { n_heads, n_kv_heads, head_dim, ffn_dim };
    let layers = match config.get("tinyllm_layers") {
        // Written by the tinyllm trainer for pruned models whose layers differ.
        Some(list) => serde_json::from_value::<Vec<LayerDims>>(list.clone()).map_err(|e| config.invalid("tinyllm_layers", list, &format!("a list of layer dimensions ({e})")))?,
        None => vec![uniform; n_layers as usize],
    };
    if layers.len() != n_layers as usize {
        return Err(config.invalid("tinyllm_layers", &Value::from(layers.len()), &format!("{n_layers} entries, one per layer")));
    }

    let mut eos_token_ids = config.ids("eos_token_id")?;
    let mut bos_token_id = config.ids("bos_token_id")?.first().copied();
    let generation_path = dir.join("generation_config.json");
    if generation_path.exists() {
        let generation = read_json(&generation_path)?;
        let generation = Config { path: &generation_path, value: &generation };
        for id in generation.ids("eos_token_id")? {
            if !eos_token_ids.contains(&id) {
                eos_token_ids.push(id);
            }
        }
        bos_token_id = bos_token_id.or(generation.ids("bos_token_id")?.first().copied());
    }

    let metadata = Metadata {
        architecture,
        name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        vocab_size: config.u32("vocab_size")?,
        hidden_dim: hidden,
        max_context: config.u32("max_position_embeddings")?,
        norm_eps: config.f64_or("rms_norm_eps", 1e-6)?,
        tie_embeddings: config.bool_or("tie_word_embeddings", false)?,
        rope: read_rope(&config)?,
        bos_token_id,
        eos_token_ids,
        pad_token_id: config.ids("pad_token_id")?.first().copied(),
        layers,
        tokenizer: read_tokenizer_info(dir)?,
        source: None,
    };
    metadata.validate().map_err(|source| ConvertError::Model { path: config_path, source })?;
    Ok(metadata)
}

/// Reads RoPE settings in either config layout: transformers 4 writes `rope_theta` and
/// `rope_scaling` at the top level, transformers 5 writes one `rope_parameters` object.
fn read_rope(config: &Config<'_>) -> Result<Rope> {
    let (theta, scaling) = match config.get("rope_parameters") {
        Some(parameters) => {
            let inner = Config { path: config.path, value: parameters };
            (inner.f64_or("rope_theta", config.f64_or("rope_theta", 10000.0)?)?, read_rope_scaling(config, Some(parameters))?)
        }
        None => (config.f64_or("rope_theta", 10000.0)?, read_rope_scaling(config, config.get("rope_scaling"))?),
    };
    Ok(Rope { theta, layout: RopeLayout::Half, scaling })
}

fn read_rope_scaling(config: &Config<'_>, scaling: Option<&Value>) -> Result<Option<RopeScaling>> {
    let Some(scaling) = scaling else { return Ok(None) };
    let kind = scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(Value::as_str).unwrap_or("default");
    let inner = Config { path: config.path, value: scaling };
    let factor = || inner.f64_or("factor", 1.0);
    match kind {
        "default" => Ok(None),
        "linear" => Ok(Some(RopeScaling::Linear { factor: factor()? })),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: factor()?,
            low_freq_factor: inner.f64_or("low_freq_factor", 1.0)?,
            high_freq_factor: inner.f64_or("high_freq_factor", 4.0)?,
            original_max_position: inner.u32("original_max_position_embeddings")?,
        })),
        other => Err(config.invalid("rope_scaling.rope_type", &Value::from(other), "default, linear or llama3")),
    }
}

/// Reads the chat template and special tokens from tokenizer_config.json (or
/// chat_template.jinja, which newer transformers versions write).
fn read_tokenizer_info(dir: &Path) -> Result<TokenizerInfo> {
    let mut info = TokenizerInfo::default();
    let path = dir.join("tokenizer_config.json");
    if path.exists() {
        let value = read_json(&path)?;
        let token_text = |field: &str| -> Option<String> {
            match value.get(field)? {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content").and_then(Value::as_str).map(String::from),
                _ => None,
            }
        };
        info.bos_token = token_text("bos_token");
        info.eos_token = token_text("eos_token");
        info.add_bos_token = value.get("add_bos_token").and_then(Value::as_bool).unwrap_or(false);
        info.chat_template = match value.get("chat_template") {
            Some(Value::String(s)) => Some(s.clone()),
            // A list of named templates: the one named "default" is the chat template.
            Some(Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|t| t.get("template").and_then(Value::as_str))
                .map(String::from),
            _ => None,
        };
    }
    let jinja = dir.join("chat_template.jinja");
    if info.chat_template.is_none() && jinja.exists() {
        info.chat_template = Some(std::fs::read_to_string(&jinja).map_err(|e| ConvertError::io(&jinja, e))?);
    }
    Ok(info)
}

/// Maps a Hugging Face tensor name to its `.tllm` name; `Ok(None)` for tensors that carry no
/// weights (the rotary `inv_freq` buffer some checkpoints store).
fn tllm_name(name: &str) -> Option<Option<String>> {
    if name.ends_with("rotary_emb.inv_freq") {
        return Some(None);
    }
    let fixed = match name {
        "model.embed_tokens.weight" => Some("token_embd"),
        "model.norm.weight" => Some("output_norm"),
        "lm_head.weight" => Some("output"),
        _ => None,
    };
    if let Some(fixed) = fixed {
        return Some(Some(fixed.to_string()));
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let short = match suffix {
        "input_layernorm.weight" => "attn_norm",
        "self_attn.q_proj.weight" => "attn_q",
        "self_attn.k_proj.weight" => "attn_k",
        "self_attn.v_proj.weight" => "attn_v",
        "self_attn.q_proj.bias" => "attn_q_bias",
        "self_attn.k_proj.bias" => "attn_k_bias",
        "self_attn.v_proj.bias" => "attn_v_bias",
        "self_attn.q_norm.weight" => "attn_q_norm",
        "self_attn.k_norm.weight" => "attn_k_norm",
        "self_attn.o_proj.weight" => "attn_output",
        "post_attention_layernorm.weight" => "ffn_norm",
        "mlp.gate_proj.weight" => "ffn_gate",
        "mlp.up_proj.weight" => "ffn_up",
        "mlp.down_proj.weight" => "ffn_down",
        _ => return None,
    };
    Some(Some(format!("layers.{layer}.{short}")))
}

/// The safetensors files of a directory: those named by `model.safetensors.index.json`, else
/// every `*.safetensors` file, sorted by name.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.exists() {
        let value = read_json(&index)?;
        let map = value.get("weight_map").and_then(Value::as_object).ok_or_else(|| ConvertError::MissingField { path: index.clone(), field: "weight_map".into() })?;
        let mut names: Vec<PathBuf> = Vec::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| ConvertError::InvalidField {
                path: index.clone(),
                field: format!("weight_map.{tensor}"),
                value: file.to_string(),
                expected: "a file name".into(),
            })?;
            let path = dir.join(file);
            if !names.contains(&path) {
                names.push(path);
            }
        }
        names
    } else {
        let entries = std::fs::read_dir(dir).map_err(|e| ConvertError::io(dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| ConvertError::io(dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "safetensors") {
                found.push(path);
            }
        }
        found
    };
    files.sort();
    if files.is_empty() {
        return Err(ConvertError::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no *.safetensors file in the model directory")));
    }
    Ok(files)
}

fn dtype_of(dtype: safetensors::Dtype) -> Option<DType> {
    match dtype {
        safetensors::Dtype::F32 => Some(DType::F32),
        safetensors::Dtype::F16 => Some(DType::F16),
        safetensors::Dtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}

/// Describes a safetensors header error. safetensors reports a tensor whose data_offsets
/// disagree with its shape, or end past the file, without naming it, so the header is parsed
/// again here to find that tensor.
fn describe_header_error(file: &[u8], error: safetensors::SafeTensorError) -> String {
    let generic = format!("{error:?}; the file header must be an 8-byte length followed by that many bytes of JSON");
    if !matches!(error, safetensors::SafeTensorError::TensorInvalidInfo | safetensors::SafeTensorError::MetadataIncompleteBuffer) {
        return generic;
    }
    // read_metadata got past the length and the JSON, so both are valid here.
    let header_len = file.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize);
    let Some(Ok(Value::Object(header))) = file.get(8..8usize.saturating_add(header_len)).map(serde_json::from_slice::<Value>) else {
        return generic;
    };
    let data_len = file.len().saturating_sub(8).saturating_sub(header_len) as u64;
    for (name, info) in header.iter().filter(|(name, _)| name.as_str() != "__metadata__") {
        let Ok(info) = serde_json::from_value::<safetensors::tensor::TensorInfo>(info.clone()) else { continue };
        let (start, end) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
        let elements = info.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let needed = elements.and_then(|n| n.checked_mul(info.dtype.bitsize() as u64)).map(|bits| bits.div_ceil(8));
        if needed != end.checked_sub(start) {
            let needed = needed.map_or("more than 2^64".to_string(), |n| n.to_string());
            return format!(
                "tensor \"{name}\" has data_offsets [{start}, {end}] but its shape {:?} of {:?} needs {needed} bytes; the file is damaged, download or save it again",
                info.shape, info.dtype
            );
        }
        if end > data_len {
            return format!(
                "tensor \"{name}\" has data_offsets [{start}, {end}] but the data section has {data_len} bytes; the file is truncated, download or save it again"
            );
        }
    }
    generic
}

/// Opens a Hugging Face model directory.
pub fn open(dir: &Path) -> Result<SourceModel> {
    let metadata = read_metadata(dir)?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer_json = std::fs::read(&tokenizer_path).map_err(|e| ConvertError::io(&tokenizer_path, e))?;
    // The bytes go into the model file unchanged, so check now, before the tensors are
    // converted, that the runtime can load them.
    tokenizers::Tokenizer::from_bytes(&tokenizer_json).map_err(|e| ConvertError::InvalidJson {
        path: tokenizer_path.clone(),
        message: format!("{e}; the Hugging Face tokenizers library cannot load this file; copy tokenizer.json from the model repository again"),
    })?;

    let mut maps = Vec::new();
    let mut tensors: BTreeMap<String, SourceTensor> = BTreeMap::new();
    for (file_index, path) in safetensors_files(dir)?.into_iter().enumerate() {
        let file = std::fs::File::open(&path).map_err(|e| ConvertError::io(&path, e))?;
        // SAFETY: read-only map of an input file; the converter only reads it, and the
        // documented contract is that inputs are not modified during a conversion.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ConvertError::io(&path, e))?;
        let (header_len, header) = safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| ConvertError::Safetensors { path: path.clone(), message: describe_header_error(&map, e) })?;
        let data_start = 8 + header_len;
        for (name, info) in header.tensors() {
            let Some(tllm) = tllm_name(&name) else {
                return Err(ConvertError::UnexpectedTensor { path: path.clone(), name });
            };
            let Some(tllm) = tllm else { continue };
            if tllm == "output" && metadata.tie_embeddings {
                continue;
            }
            let dtype = dtype_of(info.dtype).ok_or_else(|| ConvertError::UnsupportedTensorType {
                path: path.clone(),
                name: name.clone(),
                dtype: format!("{:?}", info.dtype),
                supported: "F32, F16, BF16".into(),
            })?;
            let (start, end) = info.data_offsets;
            let elements = info.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            let expected = elements.and_then(|n| n.checked_mul(info.dtype.bitsize())).map(|bits| bits.div_ceil(8));
            if expected != Some(end.wrapping_sub(start)) || start > end {
                return Err(ConvertError::Safetensors {
                    path: path.clone(),
                    message: format!("tensor \"{name}\" has data_offsets [{start}, {end}] but shape {:?} of {:?} needs {expected:?} bytes; the file is damaged", info.shape, info.dtype),
                });
            }
            if data_start.checked_add(end).is_none_or(|file_end| file_end > map.len()) {
                return Err(ConvertError::Safetensors {
                    path: path.clone(),
                    message: format!("tensor \"{name}\" ends at byte {} but the file has {} bytes; the file is truncated", data_start.saturating_add(end), map.len()),
                });
            }
            tensors.insert(
                tllm.clone(),
                SourceTensor {
                    name: tllm,
                    source_name: name,
                    shape: info.shape.iter().map(|&d| d as u64).collect(),
                    source_type: format!("{:?}", info.dtype),
                    location: Location::Safetensors { file: file_index, range: data_start + start..data_start + end, dtype },
                },
            );
        }
        maps.push((path, map));
    }
    let tensors = crate::order::canonical_order(tensors.into_values().collect());
    Ok(SourceModel { path: dir.to_path_buf(), metadata, tokenizer_json, tensors, backing: Backing::Safetensors(maps) })
}
