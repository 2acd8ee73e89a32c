//! The parameter names and shapes a model's metadata implies, in `.tllm` naming, and their
//! Hugging Face names.

use tinyllm::format::Metadata;

/// Returns every parameter of the model as `(.tllm name, shape)`, in the converter's write
/// order: embeddings, layers in forward order, output norm, output head.
pub fn parameter_shapes(metadata: &Metadata) -> Vec<(String, Vec<usize>)> {
    let hidden = metadata.hidden_dim as usize;
    let vocab = metadata.vocab_size as usize;
    let mut shapes = vec![("token_embd".to_string(), vec![vocab, hidden])];
    for (i, layer) in metadata.layers.iter().enumerate() {
        let q_dim = (layer.n_heads * layer.head_dim) as usize;
        let kv_dim = (layer.n_kv_heads * layer.head_dim) as usize;
        let ffn = layer.ffn_dim as usize;
        let name = |short: &str| format!("layers.{i}.{short}");
        shapes.push((name("attn_norm"), vec![hidden]));
        shapes.push((name("attn_q"), vec![q_dim, hidden]));
        if metadata.architecture.has_qkv_bias() {
            shapes.push((name("attn_q_bias"), vec![q_dim]));
        }
        shapes.push((name("attn_k"), vec![kv_dim, hidden]));
        if metadata.architecture.has_qkv_bias() {
            shapes.push((name("attn_k_bias"), vec![kv_dim]));
        }
        shapes.push((name("attn_v"), vec![kv_dim, hidden]));
        if metadata.architecture.has_qkv_bias() {
            shapes.push((name("attn_v_bias"), vec![kv_dim]));
        }
        if metadata.architecture.has_qk_norm() {
            shapes.push((name("attn_q_norm"), vec![layer.head_dim as usize]));
            shapes.push((name("attn_k_norm"), vec![layer.head_dim as usize]));
        }
        shapes.push((name("attn_output"), vec![hidden, q_dim]));
        shapes.push((name("ffn_norm"), vec![hidden]));
        shapes.push((name("ffn_gate"), vec![ffn, hidden]));
        shapes.push((name("ffn_up"), vec![ffn, hidden]));
        shapes.push((name("ffn_down"), vec![hidden, ffn]));
    }
    shapes.push(("output_norm".to_string(), vec![hidden]));
    if !metadata.tie_embeddings {
        shapes.push(("output".to_string(), vec![vocab, hidden]));
    }
    shapes
}

/// Maps a `.tllm` parameter name to its Hugging Face transformers name.
pub fn hf_name(name: &str) -> String {
    match name {
        "token_embd" => return "model.embed_tokens.weight".into(),
        "output_norm" => return "model.norm.weight".into(),
        "output" => return "lm_head.weight".into(),
        _ => {}
    }
    let Some((layer, short)) = name.strip_prefix("layers.").and_then(|rest| rest.split_once('.')) else {
        return name.to_string();
    };
    let suffix = match short {
        "attn_norm" => "input_layernorm.weight",
        "attn_q" => "self_attn.q_proj.weight",
        "attn_k" => "self_attn.k_proj.weight",
        "attn_v" => "self_attn.v_proj.weight",
        "attn_q_bias" => "self_attn.q_proj.bias",
        "attn_k_bias" => "self_attn.k_proj.bias",
        "attn_v_bias" => "self_attn.v_proj.bias",
        "attn_q_norm" => "self_attn.q_norm.weight",
        "attn_k_norm" => "self_attn.k_norm.weight",
        "attn_output" => "self_attn.o_proj.weight",
        "ffn_norm" => "post_attention_layernorm.weight",
        "ffn_gate" => "mlp.gate_proj.weight",
        "ffn_up" => "mlp.up_proj.weight",
        "ffn_down" => "mlp.down_proj.weight",
        other => other,
    };
    format!("model.layers.{layer}.{suffix}")
}

/// Whether AdamW applies weight decay to this parameter: matrices yes, norm weights and
/// biases no (the usual GPT-2 and Llama recipe).
pub fn decays(name: &str, shape: &[usize]) -> bool {
    shape.len() >= 2 && !name.ends_with("_bias")
}
