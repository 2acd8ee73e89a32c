//! The decoder forward pass: embeddings, layers of attention and SwiGLU, output head.
//!
//! A batch of tokens goes through the layers together, so prefill runs as matrix-matrix
//! products and decode is the batch of one.

mod attention;
pub mod kv_cache;
pub mod ops;
pub mod rope;

use alloc::vec;
use alloc::vec::Vec;

use crate::error::Result;
use crate::format::Metadata;
use crate::kernels::{self, matmul, Kernels, Parallel, QuantizedInput, Serial};
use crate::model::Model;
use crate::tensor::Matrix;
use kv_cache::{KvCache, KvLayer};
use attention::{attend, AttentionShape};
use ops::{add_bias, rms_norm, rms_norm_in_place};
use rope::RopeTable;

/// Reusable activation buffers, sized for a batch of `batch` tokens.
#[derive(Debug, Default)]
struct Buffers {
    batch: usize,
    x: Vec<f32>,       // [batch, hidden] residual stream
    xn: Vec<f32>,      // [batch, hidden] normalized input of a block
    q: Vec<f32>,       // [batch, max q_dim]
    k: Vec<f32>,       // [batch, max kv_dim]
    v: Vec<f32>,       // [batch, max kv_dim]
    attn: Vec<f32>,    // [batch, max q_dim] attention output before projection
    gate: Vec<f32>,    // [batch, max ffn_dim]
    up: Vec<f32>,      // [batch, max ffn_dim]
    scores: Vec<f32>,  // [max n_heads, context] attention weights, one row per head
    xq: QuantizedInput, // int8 or int16 groups of the input of the quantized matrices being run
}

/// Runs the decoder over token batches, keeping the per-model tables it needs.
#[derive(Debug)]
pub struct Forward {
    ropes: Vec<RopeTable>,
    /// `[sin, cos]` of the tokens being run, one list per entry of `ropes`.
    angles: Vec<Vec<[f32; 2]>>,
    buffers: Buffers,
    kernels: Result<&'static Kernels>,
    #[cfg(feature = "std")]
    pool: Option<crate::threads::ThreadPool>,
}

/// Runs `w` on the `n` rows of `x`. `xq` keeps the quantized forms of `x` for the next
/// matrix that reads the same input; `new_input` says that `x` differs from the last call's.
#[allow(clippy::too_many_arguments)]
fn project(k: &Kernels, parallel: &dyn Parallel, w: &Matrix<'_>, x: &[f32], n: usize, xq: &mut QuantizedInput, new_input: bool, out: &mut [f32]) {
    if new_input {
        xq.reset();
    }
    matmul(k, w, x, xq, n, out, parallel);
}

impl Forward {
    /// Prepares the RoPE tables for every head dimension used by the model.
    pub fn new(metadata: &Metadata) -> Forward {
        let mut ropes: Vec<RopeTable> = Vec::new();
        for layer in &metadata.layers {
            let head_dim = layer.head_dim as usize;
            if !ropes.iter().any(|r| r.head_dim() == head_dim) {
                ropes.push(RopeTable::new(&metadata.rope, head_dim));
            }
        }
        Forward {
            angles: ropes.iter().map(|_| Vec::new()).collect(),
            ropes,
            buffers: Buffers::default(),
            kernels: kernels::active(),
            #[cfg(feature = "std")]
            pool: None,
        }
    }

    /// Runs the matrix products on `threads` threads (the caller's included) from now on.
    #[cfg(feature = "std")]
    pub fn set_threads(&mut self, threads: usize) {
        self.pool = (threads > 1).then(|| crate::threads::ThreadPool::new(threads));
    }

    /// Number of threads the matrix products run on.
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(pool) = &self.pool {
            return pool.threads();
        }
        1
    }

    /// The kernel table in use, or the error that selecting it raised (for example
    /// `TINYLLM_ISA` naming an instruction set this CPU lacks).
    pub fn kernels(&self) -> Result<&'static Kernels> {
        self.kernels.clone()
    }

    fn ensure_buffers(b: &mut Buffers, metadata: &Metadata, batch: usize, context: usize) {
        let max_heads = metadata.layers.iter().map(|l| l.n_heads as usize).max().unwrap_or(0);
        if b.batch >= batch && b.scores.len() >= max_heads * context {
            return;
        }
        let hidden = metadata.hidden_dim as usize;
        let max_q = metadata.layers.iter().map(|l| (l.n_heads * l.head_dim) as usize).max().unwrap_or(0);
        let max_kv = metadata.layers.iter().map(|l| (l.n_kv_heads * l.head_dim) as usize).max().unwrap_or(0);
        let max_ffn = metadata.layers.iter().map(|l| l.ffn_dim as usize).max().unwrap_or(0);
        *b = Buffers {
            batch,
            x: vec![0.0; batch * hidden],
            xn: vec![0.0; batch * hidden],
            q: vec![0.0; batch * max_q],
            k: vec![0.0; batch * max_kv],
            v: vec![0.0; batch * max_kv],
            attn: vec![0.0; batch * max_q],
            gate: vec![0.0; batch * max_ffn],
            up: vec![0.0; batch * max_ffn],
            scores: vec![0.0; max_heads * context],
            xq: QuantizedInput::default(),
        };
    }

    /// Runs `tokens` at positions `cache.len()..` and appends their keys and values to `cache`.
    ///
    /// Writes logits into `logits`: for every token (`tokens.len()` × vocab) when `all_logits`,
    /// else for the last token only (vocab). The caller has checked the token ids and that the
    /// cache has room.
    pub fn run(&mut self, model: &Model<'_>, cache: &mut KvCache, tokens: &[u32], all_logits: bool, logits: &mut Vec<f32>) -> Result<()> {
        let k = self.kernels.clone()?;
        cache.check()?;
        #[cfg(feature = "std")]
        let parallel: &dyn Parallel = match &self.pool {
            Some(pool) => pool,
            None => &Serial,
        };
        #[cfg(not(feature = "std"))]
        let parallel: &dyn Parallel = &Serial;
        let meta = model.metadata();
        let n = tokens.len();
        let hidden = meta.hidden_dim as usize;
        let eps = meta.norm_eps as f32;
        let start = cache.len();
        Self::ensure_buffers(&mut self.buffers, meta, n, start + n);

        let embd = model.token_embd();
        for (t, &token) in tokens.iter().enumerate() {
            embd.row_to_f32(token as usize, &mut self.buffers.x[t * hidden..(t + 1) * hidden]);
        }

        for (rope, angles) in self.ropes.iter().zip(&mut self.angles) {
            rope.sin_cos(start..start + n, angles);
        }
        let ropes = Ropes { tables: &self.ropes, angles: &self.angles };
        for layer in 0..meta.layers.len() {
            attention_block(&mut self.buffers, &ropes, k, parallel, model, cache, layer, n, start, eps);
            ffn_block(&mut self.buffers, k, parallel, model, layer, n, eps);
        }
        cache.commit(n);

        let b = &mut self.buffers;
        let first = if all_logits { 0 } else { n - 1 };
        let rows = n - first;
        rms_norm(&mut b.xn[..rows * hidden], &b.x[first * hidden..n * hidden], &model.output_norm(), hidden, eps);
        let output = model.output();
        logits.clear();
        logits.resize(rows * output.rows, 0.0);
        project(k, parallel, &output, &b.xn[..rows * hidden], rows, &mut b.xq, true, logits);
        Ok(())
    }

}

/// The RoPE tables of a model and the angles of the tokens being run.
struct Ropes<'a> {
    tables: &'a [RopeTable],
    angles: &'a [Vec<[f32; 2]>],
}

/// Pre-norm grouped-query attention with a residual connection, for `n` tokens.
#[allow(clippy::too_many_arguments)]
fn attention_block(b: &mut Buffers, ropes: &Ropes<'_>, k: &Kernels, parallel: &dyn Parallel, model: &Model<'_>, cache: &mut KvCache, layer: usize, n: usize, start: usize, eps: f32) {
    let meta = model.metadata();
    let dims = meta.layers[layer];
    let w = model.layer(layer);
    let hidden = meta.hidden_dim as usize;
    let head_dim = dims.head_dim as usize;
    let (n_heads, n_kv_heads) = (dims.n_heads as usize, dims.n_kv_heads as usize);
    let (q_dim, kv_dim) = (n_heads * head_dim, n_kv_heads * head_dim);

    rms_norm(&mut b.xn[..n * hidden], &b.x[..n * hidden], &w.attn_norm, hidden, eps);
    let xn = &b.xn[..n * hidden];
    project(k, parallel, &w.attn_q, xn, n, &mut b.xq, true, &mut b.q[..n * q_dim]);
    project(k, parallel, &w.attn_k, xn, n, &mut b.xq, false, &mut b.k[..n * kv_dim]);
    project(k, parallel, &w.attn_v, xn, n, &mut b.xq, false, &mut b.v[..n * kv_dim]);
    if let Some(bias) = &w.attn_q_bias {
        add_bias(&mut b.q[..n * q_dim], bias, q_dim);
    }
    if let Some(bias) = &w.attn_k_bias {
        add_bias(&mut b.k[..n * kv_dim], bias, kv_dim);
    }
    if let Some(bias) = &w.attn_v_bias {
        add_bias(&mut b.v[..n * kv_dim], bias, kv_dim);
    }
    if let Some(norm) = &w.attn_q_norm {
        rms_norm_in_place(&mut b.q[..n * q_dim], norm, head_dim, eps);
    }
    if let Some(norm) = &w.attn_k_norm {
        rms_norm_in_place(&mut b.k[..n * kv_dim], norm, head_dim, eps);
    }
    let table = ropes.tables.iter().position(|r| r.head_dim() == head_dim).expect("a RoPE table exists for every layer's head_dim");
    let (rope, half) = (&ropes.tables[table], head_dim / 2);
    for t in 0..n {
        let angles = &ropes.angles[table][t * half..(t + 1) * half];
        rope.rotate(&mut b.q[t * q_dim..(t + 1) * q_dim], angles);
        rope.rotate(&mut b.k[t * kv_dim..(t + 1) * kv_dim], angles);
    }
    cache.append(layer, &b.k[..n * kv_dim], &b.v[..n * kv_dim]);

    // Causal attention: token t sees positions 0..=start + t.
    let shape = AttentionShape { n_heads, group: n_heads / n_kv_heads, head_dim, q_dim, kv_dim, scale: 1.0 / libm::sqrtf(head_dim as f32) };
    let (q, out, scores) = (&b.q[..n * q_dim], &mut b.attn[..n * q_dim], &mut b.scores[..]);
    match cache.layer(layer) {
        KvLayer::F32 { keys, values } => attend(k, parallel, &shape, keys, values, q, out, scores, n, start),
        KvLayer::F16 { keys, values } => attend(k, parallel, &shape, keys, values, q, out, scores, n, start),
        KvLayer::Q8_0 { keys, values } => attend(k, parallel, &shape, keys, values, q, out, scores, n, start),
    }

    project(k, parallel, &w.attn_output, &b.attn[..n * q_dim], n, &mut b.xq, true, &mut b.xn[..n * hidden]);
    for (x, delta) in b.x[..n * hidden].iter_mut().zip(&b.xn[..n * hidden]) {
        *x += delta;
    }
}

/// Pre-norm SwiGLU feed-forward block with a residual connection, for `n` tokens.
fn ffn_block(b: &mut Buffers, k: &Kernels, parallel: &dyn Parallel, model: &Model<'_>, layer: usize, n: usize, eps: f32) {
    let meta = model.metadata();
    let w = model.layer(layer);
    let hidden = meta.hidden_dim as usize;
    let ffn = meta.layers[layer].ffn_dim as usize;

    rms_norm(&mut b.xn[..n * hidden], &b.x[..n * hidden], &w.ffn_norm, hidden, eps);
    project(k, parallel, &w.ffn_gate, &b.xn[..n * hidden], n, &mut b.xq, true, &mut b.gate[..n * ffn]);
    project(k, parallel, &w.ffn_up, &b.xn[..n * hidden], n, &mut b.xq, false, &mut b.up[..n * ffn]);
    (k.silu_mul)(&mut b.gate[..n * ffn], &b.up[..n * ffn]);
    project(k, parallel, &w.ffn_down, &b.gate[..n * ffn], n, &mut b.xq, true, &mut b.xn[..n * hidden]);
    for (x, delta) in b.x[..n * hidden].iter_mut().zip(&b.xn[..n * hidden]) {
        *x += delta;
    }
}
