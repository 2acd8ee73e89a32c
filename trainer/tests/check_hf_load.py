"""Load Hugging Face directories written by the tinyllm trainer with transformers and compare
their logits with the candle logits saved beside them (candle_reference.json).

Usage:
    TINYLLM_HF_CHECK_DIR=/tmp/hf-check cargo test --release -p tinyllm-train \
        --test model_logits write_hf_check_models
    /work/venv/bin/python trainer/tests/check_hf_load.py /tmp/hf-check/*

transformers builds every layer from the top-level config sizes, so it cannot load a model
whose config.json carries `tinyllm_layers` (layers of different sizes). Such directories are
reported and skipped.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

RELATIVE_TOLERANCE = 1e-4


def check(directory: Path) -> bool:
    config = json.loads((directory / "config.json").read_text())
    if "tinyllm_layers" in config:
        print(f"{directory}: skipped, layers differ (tinyllm_layers); transformers cannot build it")
        return True
    reference = json.loads((directory / "candle_reference.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32)
    model.eval()
    AutoTokenizer.from_pretrained(directory)
    ids = torch.tensor([reference["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0].flatten()
    expected = torch.tensor(reference["logits"], dtype=torch.float32)
    diff = (logits - expected).abs().max().item()
    scale = expected.abs().max().item()
    ok = diff < RELATIVE_TOLERANCE * scale
    print(f"{directory}: max |diff| {diff:.3e}, max |logit| {scale:.3f}, ratio {diff / scale:.3e} -> {'ok' if ok else 'MISMATCH'}")
    return ok


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    results = [check(Path(arg)) for arg in sys.argv[1:]]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
