//! Helpers shared by the trainer tests: micro models, data and reference files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use tinyllm::format::metadata::{Rope, RopeLayout};
use tinyllm::format::{Architecture, LayerDims, Metadata, TokenizerInfo};
use tinyllm_train::train::batch::Example;
use tinyllm_train::Decoder;

/// Returns the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The transformers fixture models.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// Returns the shared inputs folder, or `None` with a printed reason.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TINYLLM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping {test}: shared inputs not found at {} (set TINYLLM_SHARED)", dir.display());
        None
    }
}

/// Metadata of a micro model: hidden 16, vocabulary 32, layers as given.
pub fn micro_metadata(architecture: Architecture, layers: Vec<LayerDims>, tie: bool) -> Metadata {
    Metadata {
        architecture,
        name: Some("micro".into()),
        vocab_size: 32,
        hidden_dim: 16,
        max_context: 128,
        norm_eps: 1e-5,
        tie_embeddings: tie,
        rope: Rope { theta: 10000.0, layout: RopeLayout::Half, scaling: None },
        bos_token_id: None,
        eos_token_ids: vec![1],
        pad_token_id: Some(0),
        layers,
        tokenizer: TokenizerInfo::default(),
        source: None,
    }
}

/// Builds a micro model with two different layers (about 5,000 parameters).
pub fn micro_model(architecture: Architecture, seed: u64, dtype: DType) -> Decoder {
    let layers = vec![
        LayerDims { n_heads: 4, n_kv_heads: 2, head_dim: 4, ffn_dim: 24 },
        LayerDims { n_heads: 2, n_kv_heads: 1, head_dim: 8, ffn_dim: 16 },
    ];
    Decoder::random(micro_metadata(architecture, layers, true), seed, 0.3, dtype, &Device::Cpu).unwrap()
}

/// Deterministic examples of a learnable pattern: each sequence counts up modulo 30 from a
/// start token, with the first few tokens masked out of the loss.
pub fn counting_examples(n: usize, len: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let start = (i * 7) % 30;
            let ids: Vec<u32> = (0..len).map(|t| 2 + ((start + t) % 30) as u32).collect();
            let loss_mask = (0..len).map(|t| t >= 2).collect();
            Example { ids, loss_mask }
        })
        .collect()
}

/// Reads a raw little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Returns (max |a - b|, max |b|).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let scale = b.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    (diff, scale)
}

/// Returns all weights of a model as one flat f32 vector per parameter, in order.
pub fn weights(model: &Decoder) -> Vec<(String, Vec<f32>)> {
    model.vars().map(|(name, var)| (name.clone(), var.as_tensor().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap())).collect()
}
