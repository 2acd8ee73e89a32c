//! The order tensors are written in: embeddings, then layer by layer in forward order, then
//! the output head. Reading a layer's weights then touches one contiguous part of the file.

use crate::source::SourceTensor;

const LAYER_ORDER: [&str; 14] = [
    "attn_norm", "attn_q", "attn_q_bias", "attn_k", "attn_k_bias", "attn_v", "attn_v_bias", "attn_q_norm", "attn_k_norm",
    "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
];

fn rank(name: &str) -> (usize, usize, usize) {
    if name == "token_embd" {
        return (0, 0, 0);
    }
    if let Some(rest) = name.strip_prefix("layers.") {
        if let Some((layer, suffix)) = rest.split_once('.') {
            let layer = layer.parse().unwrap_or(usize::MAX);
            let position = LAYER_ORDER.iter().position(|s| *s == suffix).unwrap_or(LAYER_ORDER.len());
            return (1, layer, position);
        }
    }
    match name {
        "output_norm" => (2, 0, 0),
        "output" => (2, 0, 1),
        _ => (3, 0, 0),
    }
}

/// Sorts tensors into the write order.
pub fn canonical_order(mut tensors: Vec<SourceTensor>) -> Vec<SourceTensor> {
    tensors.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then_with(|| a.name.cmp(&b.name)));
    tensors
}
