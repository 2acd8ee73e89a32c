//! Loads a Hugging Face safetensors directory or a GGUF file through the converter library.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tinyllm::format::metadata::RopeLayout;
use tinyllm_convert::convert::open_source;

use super::Decoder;
use crate::error::{Result, TrainError};

/// Opens a model: a Hugging Face directory (config.json, with the optional `tinyllm_layers`
/// per-layer list, and safetensors) or a GGUF file (quantized tensors are dequantized to f32).
///
/// GGUF Llama files store the query and key rows permuted for interleaved RoPE. They are
/// permuted back to the Hugging Face half layout here, and the metadata says `Half`.
pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<Decoder> {
    if !path.exists() {
        return Err(TrainError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "model not found; give a Hugging Face model directory or a .gguf file")));
    }
    let convert_error = |source| TrainError::Convert { path: path.to_path_buf(), source };
    let source = open_source(path).map_err(convert_error)?;
    let mut metadata = source.metadata.clone();
    let interleaved = metadata.rope.layout == RopeLayout::Interleaved;

    let mut tensors = HashMap::new();
    for tensor in &source.tensors {
        let mut values = source.load_f32(tensor).map_err(convert_error)?;
        let shape: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
        if interleaved {
            if let Some((layer, short)) = tensor.name.strip_prefix("layers.").and_then(|rest| rest.split_once('.')) {
                let dims = layer.parse::<usize>().ok().and_then(|l| metadata.layers.get(l).copied());
                let heads = match (short, dims) {
                    ("attn_q" | "attn_q_bias", Some(d)) => Some((d.n_heads, d.head_dim)),
                    ("attn_k" | "attn_k_bias", Some(d)) => Some((d.n_kv_heads, d.head_dim)),
                    _ => None,
                };
                if let Some((n_heads, head_dim)) = heads {
                    let row_len = if shape.len() == 2 { shape[1] } else { 1 };
                    if shape[0] == (n_heads * head_dim) as usize {
                        values = interleaved_to_half(&values, n_heads as usize, head_dim as usize, row_len);
                    }
                }
            }
        }
        tensors.insert(tensor.name.clone(), Tensor::from_vec(values, shape, device)?);
    }
    metadata.rope.layout = RopeLayout::Half;
    Decoder::from_tensors(metadata, Some(source.tokenizer_json.clone()), tensors, path, dtype, device)
}

/// Reorders the rows of a query or key projection from the interleaved RoPE layout (pairs
/// `2i, 2i + 1`) to the half layout (pairs `i, i + head_dim / 2`). This undoes llama.cpp's
/// `permute` in convert_hf_to_gguf.py: interleaved row `2i + j` of a head is half-layout row
/// `j · head_dim / 2 + i`.
pub fn interleaved_to_half(values: &[f32], n_heads: usize, head_dim: usize, row_len: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0f32; values.len()];
    for head in 0..n_heads {
        for i in 0..half {
            for j in 0..2 {
                let from = head * head_dim + 2 * i + j;
                let to = head * head_dim + j * half + i;
                out[to * row_len..(to + 1) * row_len].copy_from_slice(&values[from * row_len..(from + 1) * row_len]);
            }
        }
    }
    out
}
