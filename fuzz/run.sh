#!/usr/bin/env bash
# Runs the cargo-fuzz targets, each for SECONDS, and prints one line per target: executions,
# corpus size, and whether it found a crash, a timeout or an out-of-memory input.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 60); the README's long campaign uses 1800
#   TARGET   any of tllm_model gguf_file hf_model tokenizer_chat (default all four)
#
# Environment:
#   TINYLLM_SHARED  shared data folder (default ../shared): wikitext lines and the Qwen chat
#                   template join the tokenizer seeds when it is present
#   FUZZ_JOBS       targets run at the same time (default 1)
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). The seed corpora are made from real files: the .tllm seeds are
# the tiny transformers fixtures converted with tinyllm-convert, the GGUF seeds are committed
# (fuzz/make_gguf_seeds.py wrote them from the same fixtures), the Hugging Face seeds are the
# fixture directories. Corpora grow under target/fuzz/corpus; a crashing input is saved under
# fuzz/artifacts/TARGET/ and must become a regression input under tests/fuzz-regressions/.
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tllm_model gguf_file hf_model tokenizer_chat)
jobs=${FUZZ_JOBS:-1}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=$(realpath -m "${TINYLLM_SHARED:-$repo_root/../shared}")
cd "$repo_root"

corpus_root=target/fuzz/corpus
seed_root=target/fuzz/seeds
log_root=target/fuzz/logs
mkdir -p "$corpus_root" "$seed_root" "$log_root"
fixtures=tests/fixtures/models

make_seeds() {
    rm -rf "$seed_root" && mkdir -p "$seed_root"/{tllm_model,gguf_file,hf_model,tokenizer_chat}
    cargo build --release --locked -q -p tinyllm-convert
    local convert=${CARGO_TARGET_DIR:-target}/release/tinyllm-convert
    # .tllm: each fixture in the layouts the loader must handle.
    local spec model quant
    for spec in llama-gqa:f16 llama-gqa:q8 llama-gqa:mix llama-odd:q4-minmax qwen2:q4 qwen3:q8; do
        model=${spec%%:*} quant=${spec#*:}
        if [ "$quant" = f16 ]; then
            "$convert" "$fixtures/$model" -o "$seed_root/tllm_model/$model-$quant.tllm" --dtype f16 >/dev/null
        else
            "$convert" "$fixtures/$model" -o "$seed_root/tllm_model/$model-$quant.tllm" --quant "$quant" >/dev/null
        fi
    done
    "$convert" "$fixtures/llama-gqa" -o "$seed_root/tllm_model/llama-gqa-q4-flat.tllm" --quant q4 --interleave 1 >/dev/null
    cp fuzz/seeds/gguf_file/*.gguf "$seed_root/gguf_file/"
    # Hugging Face: u16 length of config.json, config.json, model.safetensors.
    for model in llama-gqa qwen2 qwen3; do
        python3 - "$fixtures/$model" "$seed_root/hf_model/$model.bin" <<'EOF'
import struct, sys
from pathlib import Path
d = Path(sys.argv[1])
config = (d / "config.json").read_bytes()
Path(sys.argv[2]).write_bytes(struct.pack("<H", len(config)) + config + (d / "model.safetensors").read_bytes())
EOF
    done
    # Tokenizer and chat template: mode byte, then a tokenizer.json, a template or text.
    { printf '\0'; cat "$fixtures/llama-gqa/tokenizer.json"; } > "$seed_root/tokenizer_chat/tokenizer.bin"
    python3 - "$fixtures" "$shared" "$seed_root/tokenizer_chat" <<'EOF'
import json, sys
from pathlib import Path
fixtures, shared, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
templates = [json.loads((fixtures / "llama-gqa" / "tokenizer_config.json").read_text())["chat_template"]]
qwen = shared / "tokenizers" / "qwen3" / "tokenizer_config.json"
if qwen.exists():
    templates.append(json.loads(qwen.read_text())["chat_template"])
for i, t in enumerate(templates):
    (out / f"template-{i}.bin").write_bytes(b"\x01" + t.encode())
texts = ["Hello world", "  leading spaces and\ttabs\n", "emoji \U0001F600 and accents: caf\u00e9", "<|im_start|>user\nhi<|im_end|>", "1234567890 3.14159"]
wiki = shared / "datasets" / "text" / "wikitext-2-test.txt"
if wiki.exists():
    texts += [line for line in wiki.read_text().splitlines() if len(line) > 40][:20]
for i, t in enumerate(texts):
    (out / f"text-{i}.bin").write_bytes(b"\x02" + t.encode())
EOF
}

run_target() {
    local target=$1 log="$log_root/$1.log"
    mkdir -p "$corpus_root/$target"
    # -rss_limit_mb: any input that needs more memory is a bug (an allocation sized by an
    # unchecked field). -timeout: any input that takes longer than 10 s is a hang.
    if cargo +nightly fuzz run -O --debug-assertions "$target" "$corpus_root/$target" "$seed_root/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=ok
    else
        status="FAILED (see $log and fuzz/artifacts/$target/)"
    fi
    local corpus units
    units=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(find "$corpus_root/$target" -type f | wc -l)
    printf '%-15s %8s s  executions %10s  corpus %6s  %s\n' "$target" "$seconds" "${units:-?}" "$corpus" "$status"
}

make_seeds
cargo +nightly fuzz build -O --debug-assertions
failed=0
running=0
for target in "${targets[@]}"; do
    run_target "$target" > "$log_root/$target.summary" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
rm -rf "${TMPDIR:-/tmp}"/tinyllm-fuzz-hf-*
for target in "${targets[@]}"; do cat "$log_root/$target.summary"; done
if grep -q FAILED "$log_root"/*.summary; then
    exit 1
fi
exit "$failed"
