//! Causal grouped-query attention over the KV cache, one task per query head.

use crate::kernels::{Kernels, Output, Parallel};
use crate::quant::{BlockQ8_0, QK};

/// The head layout of one layer's attention.
#[derive(Debug, Clone, Copy)]
pub(super) struct AttentionShape {
    pub n_heads: usize,
    /// Query heads per KV head.
    pub group: usize,
    pub head_dim: usize,
    pub q_dim: usize,
    pub kv_dim: usize,
    pub scale: f32,
}

/// An element type of the KV cache, read by the matching kernels. One element holds
/// `VALUES` values: one for f32 and f16, a block of 32 for Q8_0.
pub(super) trait KvElement: Sized + Sync {
    /// Values per element.
    const VALUES: usize;
    /// `out[p] = key_p · q` for each position `p` below `out.len()`, where key `p` is the
    /// `q.len() / VALUES` elements from `p · stride`.
    fn scores(kernels: &Kernels, keys: &[Self], stride: usize, q: &[f32], out: &mut [f32]);
    /// `out = Σ_p weights[p] · value_p`, where value `p` is the `out.len() / VALUES` elements
    /// from `p · stride`.
    fn mix(kernels: &Kernels, values: &[Self], stride: usize, weights: &[f32], out: &mut [f32]);
}

impl KvElement for f32 {
    const VALUES: usize = 1;

    fn scores(kernels: &Kernels, keys: &[f32], stride: usize, q: &[f32], out: &mut [f32]) {
        for (p, score) in out.iter_mut().enumerate() {
            *score = (kernels.dot_f32)(q, &keys[p * stride..p * stride + q.len()]);
        }
    }

    fn mix(kernels: &Kernels, values: &[f32], stride: usize, weights: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        let dim = out.len();
        for (p, &weight) in weights.iter().enumerate() {
            (kernels.axpy_f32)(weight, &values[p * stride..p * stride + dim], out);
        }
    }
}

impl KvElement for half::f16 {
    const VALUES: usize = 1;

    fn scores(kernels: &Kernels, keys: &[half::f16], stride: usize, q: &[f32], out: &mut [f32]) {
        (kernels.scores_f16)(keys, stride, q, out)
    }

    fn mix(kernels: &Kernels, values: &[half::f16], stride: usize, weights: &[f32], out: &mut [f32]) {
        (kernels.mix_f16)(values, stride, weights, out)
    }
}

impl KvElement for BlockQ8_0 {
    const VALUES: usize = QK;

    fn scores(kernels: &Kernels, keys: &[BlockQ8_0], stride: usize, q: &[f32], out: &mut [f32]) {
        (kernels.scores_q8_0)(keys, stride, q, out)
    }

    fn mix(kernels: &Kernels, values: &[BlockQ8_0], stride: usize, weights: &[f32], out: &mut [f32]) {
        (kernels.mix_q8_0)(values, stride, weights, out)
    }
}

/// Softmax attention of the `n` new queries in `q` (`n` × `q_dim`) over the cached `keys`
/// and `values` (positions × `kv_dim` values each), into `out` (`n` × `q_dim`). Query `t`
/// attends to positions `0..=start + t`. Each query head is one task of `parallel`, with its own
/// `start + n` attention weights in `scores` (at least `n_heads · (start + n)` values).
#[allow(clippy::too_many_arguments)]
pub(super) fn attend<E: KvElement>(
    kernels: &Kernels,
    parallel: &dyn Parallel,
    shape: &AttentionShape,
    keys: &[E],
    values: &[E],
    q: &[f32],
    out: &mut [f32],
    scores: &mut [f32],
    n: usize,
    start: usize,
) {
    let AttentionShape { n_heads, group, head_dim, q_dim, kv_dim, scale } = *shape;
    let context = start + n;
    assert!(q.len() >= n * q_dim, "attention queries shorter than {n} tokens");
    assert!(out.len() >= n * q_dim, "attention output shorter than {n} tokens");
    assert!(scores.len() >= n_heads * context, "attention scores shorter than {n_heads} heads of {context} positions");
    let (out, scores) = (Output::new(out), Output::new(scores));
    let row_elements = kv_dim / E::VALUES;
    parallel.run(n_heads, &|h| {
        let kv_offset = (h / group) * (head_dim / E::VALUES);
        // SAFETY: task `h` alone uses scores `h · context..(h + 1) · context`.
        let scores = unsafe { scores.range(h * context, context) };
        for t in 0..n {
            let visible = start + t + 1;
            let query = &q[t * q_dim + h * head_dim..t * q_dim + (h + 1) * head_dim];
            let weights = &mut scores[..visible];
            E::scores(kernels, &keys[kv_offset..], row_elements, query, weights);
            for score in weights.iter_mut() {
                *score *= scale;
            }
            (kernels.softmax)(weights);
            // SAFETY: task `h` alone writes head `h` of each token's output.
            let head_out = unsafe { out.range(t * q_dim + h * head_dim, head_dim) };
            E::mix(kernels, &values[kv_offset..], row_elements, weights, head_out);
        }
    });
}
