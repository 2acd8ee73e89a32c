#!/usr/bin/env python3
"""Build Qwen2.5-0.5B-shaped models with random weights for speed benchmarks.

Speed depends on the shapes and the weight types, not on the weight values, so a model with
Qwen2.5-0.5B's dimensions and random weights times the same as the trained one. The script writes:

  OUT/qwen-0.5b-shape/          Hugging Face directory: Qwen2ForCausalLM, hidden 896, FFN 4864,
                                24 layers, 14 query and 2 KV heads of dimension 64, vocabulary
                                151936, tied embeddings, rope_theta 1e6, bf16 safetensors
  OUT/qwen-0.4b-shape/          the same model with the FFN of the last 12 layers cut to 3072
                                channels, described by the `tinyllm_layers` list in config.json
                                that tinyllm-convert reads (transformers and llama.cpp cannot
                                load layers of unequal size)
  OUT/qwen-0.5b-shape.F16.gguf  with --llama-cpp DIR: llama.cpp's convert_hf_to_gguf.py output
  OUT/qwen-0.5b-shape.Q8_0.gguf, OUT/qwen-0.5b-shape.Q4_0.gguf
                                with --llama-cpp DIR: llama-quantize of the F16 file

Run it with a Python that has torch, transformers and safetensors. convert_hf_to_gguf.py also
imports mistral_common, so --convert-python names the interpreter that runs it.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

HIDDEN = 896
FFN = 4864
LAYERS = 24
HEADS = 14
KV_HEADS = 2
HEAD_DIM = 64
VOCAB = 151936
# Qwen2.5's <|endoftext|> and <|im_end|>.
BOS_ID = 151643
EOS_ID = 151645

PRUNED_FFN = 3072
PRUNED_LAYERS = 12  # the last 12 layers get PRUNED_FFN channels


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    parser.add_argument("--tokenizer", type=Path, required=True, help="folder with the Qwen tokenizer.json and tokenizer_config.json")
    parser.add_argument("--llama-cpp", type=Path, help="llama.cpp source folder (with convert_hf_to_gguf.py); enables the GGUF outputs")
    parser.add_argument("--quantize", type=Path, help="llama-quantize binary (required with --llama-cpp)")
    parser.add_argument("--convert-python", default=sys.executable, help="Python that runs convert_hf_to_gguf.py (default: this one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild outputs that already exist")
    return parser.parse_args()


def qwen_config() -> Qwen2Config:
    return Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        hidden_act="silu",
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        torch_dtype="bfloat16",
    )


def copy_tokenizer(tokenizer_dir: Path, model_dir: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        source = tokenizer_dir / name
        if not source.is_file():
            sys.exit(f"error: {source} not found; --tokenizer must name a folder with tokenizer.json and tokenizer_config.json")
        shutil.copy(source, model_dir / name)


def add_legacy_fields(config: dict) -> dict:
    """Add the top-level fields that transformers 4 wrote and older readers look for.

    transformers 5 moves rope_theta into rope_parameters and renames torch_dtype to dtype.
    llama.cpp's convert_hf_to_gguf.py of llama-cpp-python 0.3.16 reads only the top-level
    rope_theta and would fall back to 10000 without it.
    """
    config.setdefault("rope_theta", config.get("rope_parameters", {}).get("rope_theta", 1000000.0))
    config.setdefault("torch_dtype", config.get("dtype", "bfloat16"))
    return config


def write_full(model: Qwen2ForCausalLM, out_dir: Path, tokenizer_dir: Path) -> None:
    print(f"writing {out_dir}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    config_path = out_dir / "config.json"
    config_path.write_text(json.dumps(add_legacy_fields(json.loads(config_path.read_text())), indent=2) + "\n")
    copy_tokenizer(tokenizer_dir, out_dir)


def write_pruned(model: Qwen2ForCausalLM, out_dir: Path, tokenizer_dir: Path) -> None:
    """Write the model with the first PRUNED_FFN FFN channels kept in the last PRUNED_LAYERS layers."""
    print(f"writing {out_dir}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    first_pruned = LAYERS - PRUNED_LAYERS
    tensors = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to model.embed_tokens.weight
        parts = name.split(".")
        if len(parts) > 3 and parts[1] == "layers" and int(parts[2]) >= first_pruned:
            if name.endswith(("mlp.gate_proj.weight", "mlp.up_proj.weight")):
                tensor = tensor[:PRUNED_FFN, :]
            elif name.endswith("mlp.down_proj.weight"):
                tensor = tensor[:, :PRUNED_FFN]
        tensors[name] = tensor.contiguous()
    save_file(tensors, out_dir / "model.safetensors", metadata={"format": "pt"})

    config = add_legacy_fields(model.config.to_dict())
    config["architectures"] = ["Qwen2ForCausalLM"]
    config["tinyllm_layers"] = [
        {"n_heads": HEADS, "n_kv_heads": KV_HEADS, "head_dim": HEAD_DIM, "ffn_dim": FFN if layer < first_pruned else PRUNED_FFN}
        for layer in range(LAYERS)
    ]
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    copy_tokenizer(tokenizer_dir, out_dir)


def run(command: list) -> None:
    print("+ " + " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True)


def write_ggufs(args: argparse.Namespace, hf_dir: Path) -> None:
    convert_script = args.llama_cpp / "convert_hf_to_gguf.py"
    if not convert_script.is_file():
        sys.exit(f"error: {convert_script} not found; --llama-cpp must name llama.cpp's source folder")
    if args.quantize is None or not args.quantize.is_file():
        sys.exit(f"error: llama-quantize not found at {args.quantize}; pass --quantize PATH")
    f16 = args.out / "qwen-0.5b-shape.F16.gguf"
    if args.force or not f16.exists():
        run([args.convert_python, convert_script, hf_dir, "--outtype", "f16", "--outfile", f16])
    for quant in ("Q8_0", "Q4_0"):
        target = args.out / f"qwen-0.5b-shape.{quant}.gguf"
        if args.force or not target.exists():
            run([args.quantize, f16, target, quant])


def main() -> None:
    args = parse_args()
    full_dir = args.out / "qwen-0.5b-shape"
    pruned_dir = args.out / "qwen-0.4b-shape"
    if args.force or not (full_dir / "config.json").exists() or not (pruned_dir / "config.json").exists():
        torch.manual_seed(args.seed)
        # Random initialization (normal, std 0.02) as transformers does for a new model.
        model = Qwen2ForCausalLM(qwen_config()).to(torch.bfloat16).eval()
        parameters = sum(p.numel() for p in model.parameters())
        print(f"built a Qwen2 model with {parameters / 1e6:.1f} M parameters", flush=True)
        write_full(model, full_dir, args.tokenizer)
        write_pruned(model, pruned_dir, args.tokenizer)
    else:
        print(f"{full_dir} and {pruned_dir} exist; pass --force to rebuild them", flush=True)
    if args.llama_cpp is not None:
        write_ggufs(args, full_dir)


if __name__ == "__main__":
    main()
