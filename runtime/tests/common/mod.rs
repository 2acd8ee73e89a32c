//! Builders of small `.tllm` files for the runtime tests.
#![allow(dead_code)]

use std::io::Cursor;

use tinyllm::format::metadata::{Rope, RopeLayout};
use tinyllm::format::writer::{write_tllm, TensorPlan};
use tinyllm::format::{Architecture, LayerDims, Metadata, TokenizerInfo};
use tinyllm::DType;

/// Deterministic pseudo-random values in [-scale, scale).
pub fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Metadata of a two-layer model whose second layer is narrower, like a pruned model.
pub fn tiny_metadata(architecture: Architecture) -> Metadata {
    Metadata {
        architecture,
        name: Some("tiny".into()),
        vocab_size: 37,
        hidden_dim: 16,
        max_context: 64,
        norm_eps: 1e-5,
        tie_embeddings: false,
        rope: Rope { theta: 10000.0, layout: RopeLayout::Half, scaling: None },
        bos_token_id: Some(1),
        eos_token_ids: vec![2],
        pad_token_id: None,
        layers: vec![
            LayerDims { n_heads: 4, n_kv_heads: 2, head_dim: 4, ffn_dim: 24 },
            LayerDims { n_heads: 2, n_kv_heads: 1, head_dim: 8, ffn_dim: 12 },
        ],
        tokenizer: TokenizerInfo::default(),
        source: None,
    }
}

/// The tensors an architecture needs, with the shapes `metadata` implies.
pub fn plans(metadata: &Metadata, dtype: DType) -> Vec<TensorPlan> {
    let hidden = metadata.hidden_dim as u64;
    let vocab = metadata.vocab_size as u64;
    let mut plans = vec![TensorPlan { name: "token_embd".into(), dtype, shape: vec![vocab, hidden] }];
    for (i, l) in metadata.layers.iter().enumerate() {
        let q = (l.n_heads * l.head_dim) as u64;
        let kv = (l.n_kv_heads * l.head_dim) as u64;
        let ffn = l.ffn_dim as u64;
        let mut add = |suffix: &str, dtype: DType, shape: Vec<u64>| plans.push(TensorPlan { name: format!("layers.{i}.{suffix}"), dtype, shape });
        add("attn_norm", DType::F32, vec![hidden]);
        add("attn_q", dtype, vec![q, hidden]);
        add("attn_k", dtype, vec![kv, hidden]);
        add("attn_v", dtype, vec![kv, hidden]);
        if metadata.architecture.has_qkv_bias() {
            add("attn_q_bias", DType::F32, vec![q]);
            add("attn_k_bias", DType::F32, vec![kv]);
            add("attn_v_bias", DType::F32, vec![kv]);
        }
        if metadata.architecture.has_qk_norm() {
            add("attn_q_norm", DType::F32, vec![l.head_dim as u64]);
            add("attn_k_norm", DType::F32, vec![l.head_dim as u64]);
        }
        add("attn_output", dtype, vec![hidden, q]);
        add("ffn_norm", DType::F32, vec![hidden]);
        add("ffn_gate", dtype, vec![ffn, hidden]);
        add("ffn_up", dtype, vec![ffn, hidden]);
        add("ffn_down", dtype, vec![hidden, ffn]);
    }
    plans.push(TensorPlan { name: "output_norm".into(), dtype: DType::F32, shape: vec![hidden] });
    if !metadata.tie_embeddings {
        plans.push(TensorPlan { name: "output".into(), dtype, shape: vec![vocab, hidden] });
    }
    plans
}

/// Encodes `values` as little-endian bytes of `dtype`.
pub fn encode(values: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        DType::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        DType::Quant(_) => panic!("quantized tensors are written with quantize_matrix"),
    }
}

/// Writes a model file with random weights (norm weights near 1) for `metadata` and `plans`.
pub fn write_model(metadata: &Metadata, plans: &[TensorPlan], tokenizer_json: &[u8]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    write_tllm(&mut out, metadata, tokenizer_json, plans, |i| {
        let plan = &plans[i];
        let n: u64 = plan.shape.iter().product();
        let mut v = values(i as u64 + 1, n as usize, 0.5);
        if plan.name.ends_with("norm") {
            v.iter_mut().for_each(|x| *x += 1.0);
        }
        Ok(match plan.dtype {
            DType::Quant(qtype) => tinyllm::quant::quantize_matrix(&v, plan.shape[0] as usize, plan.shape[1] as usize, qtype),
            dtype => encode(&v, dtype),
        })
    })
    .expect("writing to memory succeeds");
    out.into_inner()
}

/// A complete tiny model file of `architecture` in f32.
pub fn tiny_model(architecture: Architecture) -> Vec<u8> {
    let metadata = tiny_metadata(architecture);
    write_model(&metadata, &plans(&metadata, DType::F32), b"")
}

/// Recomputes the metadata checksum after a test edited the header or a section.
pub fn fix_checksum(bytes: &mut [u8]) {
    let header = tinyllm::format::Header::parse(bytes).expect("the edited header still parses");
    let checksum = tinyllm::format::header::metadata_checksum(bytes, &header);
    let at = tinyllm::format::header::CHECKSUM_OFFSET;
    bytes[at..at + 4].copy_from_slice(&checksum.to_le_bytes());
}

/// A copy of `bytes` in a buffer aligned to 64 bytes, as a model must be for `from_bytes`.
pub struct Aligned {
    storage: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

impl Aligned {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Aligned {
        let mut storage = vec![Block([0; 64]); bytes.len().div_ceil(64)];
        // SAFETY: Block is 64 plain bytes with no padding, so the storage is a valid byte
        // slice of storage.len() * 64 bytes, which is at least bytes.len().
        let view = unsafe { std::slice::from_raw_parts_mut(storage.as_mut_ptr() as *mut u8, storage.len() * 64) };
        view[..bytes.len()].copy_from_slice(bytes);
        Aligned { storage, len: bytes.len() }
    }

    /// The aligned bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as in `new`; the first `len` bytes were initialized from the source.
        unsafe { std::slice::from_raw_parts(self.storage.as_ptr() as *const u8, self.len) }
    }
}
