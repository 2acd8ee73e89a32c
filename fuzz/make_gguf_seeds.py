"""Writes the GGUF seeds of the `gguf_file` fuzz target from the tiny transformers fixtures.

Each seed is a complete GGUF that the converter loads. It holds the fixture's first layer, to
keep the seed small, in a mix of tensor types (F32, F16, BF16, Q8_0, Q4_0, Q4_1). Its
byte-level BPE tokenizer and chat template are in the GGUF tokenizer metadata.

Usage (needs the PyPI packages gguf, numpy, safetensors and torch):
    python fuzz/make_gguf_seeds.py
Writes fuzz/seeds/gguf_file/*.gguf.
"""

import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "fuzz" / "seeds" / "gguf_file"

Q = gguf.GGMLQuantizationType
# Tensor type per GGUF tensor name suffix; everything else is F32.
TYPES = {
    "attn_q.weight": Q.Q8_0,
    "attn_k.weight": Q.Q4_0,
    "attn_v.weight": Q.Q4_1,
    "attn_output.weight": Q.F16,
    "ffn_gate.weight": Q.Q4_0,
    "ffn_up.weight": Q.Q4_1,
    "ffn_down.weight": Q.BF16,
    "token_embd.weight": Q.Q8_0,
}
HF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def gguf_name(hf_name):
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")
    layer, rest, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
    return f"blk.{layer}.{HF_NAMES[rest]}.{kind}"


def permute_for_llama(w, n_heads):
    """Reorders Llama Q or K rows as llama.cpp's converter writes them (interleaved RoPE pairs)."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add_tokenizer(writer, model_dir):
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    vocab = tok["model"]["vocab"]
    added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    size = max(list(vocab.values()) + list(added.values())) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    for text, i in vocab.items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for text, i in added.items():
        tokens[i], types[i] = text, gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(added.get(config.get("eos_token"), 2))
    writer.add_chat_template(config["chat_template"])
    return size


def write_seed(fixture, arch, out_name):
    model_dir = FIXTURES / fixture
    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    writer = gguf.GGUFWriter(str(OUT / out_name), arch)
    n_heads, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // n_heads

    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(1)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    theta = config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0)
    writer.add_rope_freq_base(theta)
    add_tokenizer(writer, model_dir)

    for hf_name, w in weights.items():
        if ".layers." in hf_name and not hf_name.startswith("model.layers.0."):
            continue
        name = gguf_name(hf_name)
        w = w.float().numpy()
        if arch == "llama" and name.endswith("attn_q.weight"):
            w = permute_for_llama(w, n_heads)
        if arch == "llama" and name.endswith("attn_k.weight"):
            w = permute_for_llama(w, n_kv)
        qtype = TYPES.get(name.split(".", 2)[-1] if name.startswith("blk.") else name, Q.F32)
        if w.ndim == 1:
            qtype = Q.F32
        elif w.shape[-1] % 32 != 0:
            qtype = Q.F16
        if qtype == Q.F32:
            writer.add_tensor(name, w)
        elif qtype == Q.F16:
            writer.add_tensor(name, w.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(w, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_seed("llama-gqa", "llama", "llama-gqa-1layer.gguf")
    write_seed("qwen2", "qwen2", "qwen2-1layer.gguf")
    for path in sorted(OUT.glob("*.gguf")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
