#!/usr/bin/env bash
# Times tinyllm against llama.cpp on the same GGUF weights and prints a side-by-side table.
#
# Usage: benches/compare-llama-cpp.sh [--gguf PATH]... [--tllm PATH]... [--qwen-shape]
#            [--threads 1,2] [--reps N] [--rounds N] [--prompt N] [--generate N] [--markdown]
#
# Steps:
#   1. Builds llama-bench and llama-quantize from the llama.cpp source vendored in the PyPI sdist
#      of llama-cpp-python (downloaded with pip into target/llama.cpp/, never committed), in
#      Release for the host CPU (GGML_NATIVE). Installs cmake with apt-get when it is missing.
#   2. Builds tinyllm and tinyllm-convert in release mode and converts each GGUF with
#      `tinyllm-convert GGUF -o X.tllm --quant source`, which keeps the Q8_0/Q4_0/Q4_1 blocks, so
#      both runtimes read the same weights.
#   3. For each model and thread count, runs `llama-bench -p P -n N -t T -r R -o json` and then
#      `tinyllm bench -p P -n N -t T -r R --json`. With --rounds K it repeats that pair K times
#      and pools the samples, so slow periods on a shared machine hit both runtimes alike.
#   4. Prints tokens per second (mean ± sample standard deviation) of each runtime, their ratio,
#      and for decode the roofline fraction: weight bytes read per token times tokens per second,
#      over the read bandwidth that `tinyllm bench --bandwidth` measures with the same threads.
#
# Options:
#   --gguf PATH      GGUF to compare (repeatable). Default:
#                    $TINYLLM_SHARED/models/SmolLM2-135M-Instruct.Q4_1.gguf (TINYLLM_SHARED
#                    defaults to ../shared from the repository root).
#   --tllm PATH      .tllm file to time with tinyllm only (repeatable), for models llama.cpp
#                    cannot load, such as pruned ones with layers of unequal size.
#   --qwen-shape     also run benches/make-qwen-shape.py and add its Qwen2.5-0.5B-shaped
#                    Q8_0 and Q4_0 GGUFs, and its pruned 0.4B shape (tinyllm only, converted
#                    with --quant q8 and --quant q4). Needs --python with torch and transformers.
#   --python PATH    Python with torch and transformers for --qwen-shape (default: python3)
#   --threads LIST   thread counts, comma-separated (default: 1,2)
#   --reps N         repetitions of each test in each run (default: 3)
#   --rounds N       times to repeat each llama.cpp/tinyllm pair (default: 1)
#   --prompt N       prompt length of the prompt-processing test (default: 512)
#   --generate N     tokens of the generation test (default: 64)
#   --markdown       print the table as Markdown
#   --help           print this help
#
# Environment:
#   LLAMA_CPP_PYTHON_VERSION  sdist version to build llama.cpp from (default: 0.3.16)
#   COMPARE_WORK_DIR          folder for the llama.cpp build, converted models and raw results
#                             (default: target/llama.cpp)
#
# Raw JSON of every run goes to $COMPARE_WORK_DIR/results/<time>/. The script takes no input
# and exits non-zero on the first failed step.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

shared_dir=${TINYLLM_SHARED:-../shared}
llama_cpp_python_version=${LLAMA_CPP_PYTHON_VERSION:-0.3.16}
work_dir=${COMPARE_WORK_DIR:-target/llama.cpp}

ggufs=()
tllms=()
qwen_shape=false
python=python3
threads=1,2
reps=3
rounds=1
prompt=512
generate=64
markdown=false

step() {
    printf '\n==> %s\n' "$*" >&2
}

fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

positive_integer() {
    [[ $2 =~ ^[1-9][0-9]*$ ]] || fail "$1 must be a positive integer, got \"$2\""
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --gguf) [[ $# -ge 2 ]] || fail "--gguf needs a path"; ggufs+=("$2"); shift 2 ;;
        --tllm) [[ $# -ge 2 ]] || fail "--tllm needs a path"; tllms+=("$2"); shift 2 ;;
        --qwen-shape) qwen_shape=true; shift ;;
        --python) [[ $# -ge 2 ]] || fail "--python needs a path"; python=$2; shift 2 ;;
        --threads) [[ $# -ge 2 ]] || fail "--threads needs a list"; threads=$2; shift 2 ;;
        --reps) [[ $# -ge 2 ]] || fail "--reps needs a number"; reps=$2; shift 2 ;;
        --rounds) [[ $# -ge 2 ]] || fail "--rounds needs a number"; rounds=$2; shift 2 ;;
        --prompt) [[ $# -ge 2 ]] || fail "--prompt needs a number"; prompt=$2; shift 2 ;;
        --generate) [[ $# -ge 2 ]] || fail "--generate needs a number"; generate=$2; shift 2 ;;
        --markdown) markdown=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) fail "unknown option \"$1\"; see --help" ;;
    esac
done

[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || fail "--threads must be a comma-separated list of positive integers, got \"$threads\""
positive_integer --reps "$reps"
positive_integer --rounds "$rounds"
positive_integer --prompt "$prompt"
positive_integer --generate "$generate"
IFS=, read -r -a thread_counts <<<"$threads"

if [[ ${#ggufs[@]} -eq 0 ]]; then
    ggufs=("$shared_dir/models/SmolLM2-135M-Instruct.Q4_1.gguf")
fi

command -v python3 >/dev/null || fail "python3 not found; it downloads the llama.cpp source with pip and prints the table"

# Rust comes from rustup, which may be missing from PATH in a non-login shell.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
command -v cargo >/dev/null || fail "cargo not found; install Rust with rustup (https://rustup.rs)"

# ---------------------------------------------------------------------------------------------
# llama.cpp

sdist_dir=$work_dir/llama_cpp_python-$llama_cpp_python_version
llama_src=$sdist_dir/vendor/llama.cpp
llama_build=$work_dir/build
llama_bench=$llama_build/bin/llama-bench
llama_quantize=$llama_build/bin/llama-quantize

install_build_tools() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v c++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    [[ ${#missing[@]} -eq 0 ]] && return
    command -v apt-get >/dev/null || fail "${missing[*]} not found and apt-get is unavailable; install them and run again"
    [[ $(id -u) -eq 0 ]] || fail "${missing[*]} not found; install them (apt-get install ${missing[*]}) as root and run again"
    step "Installing ${missing[*]} with apt-get"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
}

fetch_llama_cpp() {
    if [[ -f $llama_src/CMakeLists.txt ]]; then
        printf 'using llama.cpp source in %s\n' "$llama_src" >&2
        return
    fi
    local sdist=$work_dir/llama_cpp_python-$llama_cpp_python_version.tar.gz
    if [[ ! -f $sdist ]]; then
        step "Downloading the sdist of llama-cpp-python $llama_cpp_python_version from PyPI"
        mkdir -p "$work_dir"
        python3 -m pip download "llama-cpp-python==$llama_cpp_python_version" --no-deps --no-binary :all: \
            --disable-pip-version-check -d "$work_dir" >&2
        [[ -f $sdist ]] || fail "pip reported success but $sdist is missing"
    fi
    step "Extracting $sdist"
    tar -xzf "$sdist" -C "$work_dir"
    [[ -f $llama_src/CMakeLists.txt ]] || fail "$sdist has no vendor/llama.cpp/CMakeLists.txt"
}

build_llama_cpp() {
    # A build folder configured for another source folder (another sdist version) is replaced.
    local cache=$llama_build/CMakeCache.txt
    local source_abs
    source_abs=$(cd "$llama_src" && pwd)
    if [[ -f $cache ]] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$source_abs" "$cache"; then
        step "Removing $llama_build, configured for another llama.cpp source"
        rm -rf "$llama_build"
    fi
    if [[ ! -f $cache ]]; then
        step "Configuring llama.cpp (Release, GGML_NATIVE=ON, LLAMA_CURL=OFF)"
        nice -n 19 cmake -S "$llama_src" -B "$llama_build" -DCMAKE_BUILD_TYPE=Release \
            -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_SERVER=OFF >&2
    fi
    step "Building llama-bench and llama-quantize (cmake --build -j2, nice 19)"
    nice -n 19 cmake --build "$llama_build" --config Release --target llama-bench llama-quantize -j2 >&2
    [[ -x $llama_bench ]] || fail "the build finished but $llama_bench is missing"
}

# Prints the Python of a venv for llama.cpp's convert_hf_to_gguf.py. A .pth file puts the
# packages of --python (torch) on its path, and the venv adds the converter's own requirements,
# so the --python environment is left unchanged.
convert_python() {
    local venv=$work_dir/venv
    if [[ ! -x $venv/bin/python ]]; then
        step "Creating $venv for convert_hf_to_gguf.py"
        local base_site
        base_site=$("$python" -c 'import site; print(site.getsitepackages()[0])')
        "$python" -m venv "$venv" >&2
        local venv_site
        venv_site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
        printf '%s\n' "$base_site" >"$venv_site/base-site-packages.pth"
        # Pins from the converter's requirements files (requirements-convert_*.txt) in 0.3.16.
        nice -n 19 "$venv/bin/python" -m pip install --disable-pip-version-check -q \
            'mistral-common==1.8.3' 'transformers>=4.45.1,<5' >&2
    fi
    printf '%s\n' "$venv/bin/python"
}

# ---------------------------------------------------------------------------------------------
# tinyllm

# Cargo puts the binaries under CARGO_TARGET_DIR when it is set.
tinyllm=${CARGO_TARGET_DIR:-target}/release/tinyllm
tinyllm_convert=${CARGO_TARGET_DIR:-target}/release/tinyllm-convert

# Prints the .tllm path for a GGUF, converting it when the .tllm is missing or older than the
# GGUF or the converter.
convert_gguf() {
    local gguf=$1
    local name
    name=$(basename "$gguf" .gguf)
    local tllm=$work_dir/tllm/$name.tllm
    if [[ -f $tllm && $tllm -nt $gguf && $tllm -nt $tinyllm_convert ]]; then
        printf 'using %s, newer than %s and the converter\n' "$tllm" "$gguf" >&2
    else
        step "Converting $gguf to $tllm (--quant source)"
        mkdir -p "$work_dir/tllm"
        nice -n 19 "$tinyllm_convert" "$gguf" -o "$tllm" --quant source --quiet >&2
    fi
    printf '%s\n' "$tllm"
}

# ---------------------------------------------------------------------------------------------

install_build_tools
fetch_llama_cpp
build_llama_cpp

step "Building tinyllm and tinyllm-convert (cargo build --release, nice 19)"
nice -n 19 cargo build --release -p tinyllm -p tinyllm-convert >&2

if $qwen_shape; then
    "$python" -c 'import torch, transformers, safetensors' 2>/dev/null \
        || fail "--python $python lacks torch, transformers or safetensors, which --qwen-shape needs"
    converter_python=$(convert_python)
    step "Making the Qwen2.5-0.5B-shaped models (benches/make-qwen-shape.py)"
    nice -n 19 "$python" benches/make-qwen-shape.py --out models --tokenizer "$shared_dir/tokenizers/qwen3" \
        --llama-cpp "$llama_src" --quantize "$llama_quantize" --convert-python "$converter_python" >&2
    ggufs+=(models/qwen-0.5b-shape.Q8_0.gguf models/qwen-0.5b-shape.Q4_0.gguf)
    for quant in q8 q4; do
        pruned=models/qwen-0.4b-shape.$quant.tllm
        if [[ ! -f $pruned || models/qwen-0.4b-shape/model.safetensors -nt $pruned || $tinyllm_convert -nt $pruned ]]; then
            step "Converting models/qwen-0.4b-shape to $pruned (--quant $quant)"
            nice -n 19 "$tinyllm_convert" models/qwen-0.4b-shape -o "$pruned" --quant "$quant" --quiet >&2
        fi
        tllms+=("$pruned")
    done
fi

for gguf in "${ggufs[@]}"; do
    [[ -f $gguf ]] || fail "GGUF not found: $gguf"
done
for tllm in "${tllms[@]}"; do
    [[ -f $tllm ]] || fail ".tllm file not found: $tllm"
done

results_dir=$work_dir/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$results_dir"
manifest=$results_dir/manifest.tsv
: >"$manifest"
# Runs use a copy of the binary, so a rebuild during the runs (by another shell) cannot mix two
# builds in one table.
cp "$tinyllm" "$results_dir/tinyllm"
tinyllm=$results_dir/tinyllm

# Prints the 1-minute load average, which shows how busy the machine was before a run.
load_average() {
    cut -d ' ' -f 1 /proc/loadavg 2>/dev/null || echo nan
}

# Runs one tinyllm bench and records it. The first round also measures read bandwidth.
run_tinyllm() {
    local label=$1 tllm=$2 t=$3 round=$4
    local out=$results_dir/$label-t$t-r$round-tinyllm.json
    local bandwidth=()
    [[ $round -eq 1 ]] && bandwidth=(--bandwidth)
    local load
    load=$(load_average)
    printf '  tinyllm   %s, %s threads, round %s/%s\n' "$label" "$t" "$round" "$rounds" >&2
    "$tinyllm" bench -m "$tllm" -p "$prompt" -n "$generate" -t "$t" -r "$reps" "${bandwidth[@]}" --json >"$out" \
        || fail "tinyllm bench failed on $tllm; command: $tinyllm bench -m $tllm -p $prompt -n $generate -t $t -r $reps --json"
    printf '%s\ttinyllm\t%s\t%s\t%s\n' "$label" "$t" "$out" "$load" >>"$manifest"
}

run_llama() {
    local label=$1 gguf=$2 t=$3 round=$4
    local out=$results_dir/$label-t$t-r$round-llama.json
    local load
    load=$(load_average)
    printf '  llama.cpp %s, %s threads, round %s/%s\n' "$label" "$t" "$round" "$rounds" >&2
    "$llama_bench" -m "$gguf" -p "$prompt" -n "$generate" -t "$t" -r "$reps" -o json >"$out" 2>"$out.log" \
        || fail "llama-bench failed on $gguf; see $out.log"
    printf '%s\tllama.cpp\t%s\t%s\t%s\n' "$label" "$t" "$out" "$load" >>"$manifest"
}

step "Timing pp$prompt and tg$generate, threads $threads, $reps repetitions x $rounds round(s); raw results in $results_dir"
for gguf in "${ggufs[@]}"; do
    label=$(basename "$gguf" .gguf)
    tllm=$(convert_gguf "$gguf")
    for t in "${thread_counts[@]}"; do
        for ((round = 1; round <= rounds; round++)); do
            run_llama "$label" "$gguf" "$t" "$round"
            run_tinyllm "$label" "$tllm" "$t" "$round"
        done
    done
done
for tllm in "${tllms[@]}"; do
    label=$(basename "$tllm" .tllm)
    for t in "${thread_counts[@]}"; do
        for ((round = 1; round <= rounds; round++)); do
            run_tinyllm "$label" "$tllm" "$t" "$round"
        done
    done
done

llama_version="llama-cpp-python $llama_cpp_python_version"
tinyllm_version=$(git describe --always --dirty 2>/dev/null || echo unknown)
python3 - "$manifest" "$markdown" "$llama_version" "$tinyllm_version" <<'EOF' | tee "$results_dir/table.txt"
import json
import math
import sys

manifest, markdown, llama_version, tinyllm_version = sys.argv[1], sys.argv[2] == "true", sys.argv[3], sys.argv[4]


def pool(groups):
    """Mean and sample standard deviation of the union of groups given as (mean, std, n)."""
    total = sum(n for _, _, n in groups)
    mean = sum(m * n for m, _, n in groups) / total
    squares = sum((n - 1) * s * s + n * (m - mean) ** 2 for m, s, n in groups)
    return mean, math.sqrt(squares / (total - 1)) if total > 1 else 0.0


# (model, test, threads) -> engine -> list of (mean, std, n)
groups = {}
# (model, threads) -> bytes read per generated token, measured read bandwidth in GB/s
decode = {}
order = []
machine = {}
loads = []
for line in open(manifest):
    model, engine, threads, path, load = line.rstrip("\n").split("\t")
    loads.append(float(load))
    report = json.load(open(path))
    if engine == "llama.cpp":
        for result in report:
            test = f"pp{result['n_prompt']}" if result["n_gen"] == 0 else f"tg{result['n_gen']}"
            samples = result["samples_ts"]
            mean = sum(samples) / len(samples)
            std = math.sqrt(sum((s - mean) ** 2 for s in samples) / (len(samples) - 1)) if len(samples) > 1 else 0.0
            groups.setdefault((model, test, int(threads)), {}).setdefault(engine, []).append((mean, std, len(samples)))
            machine.setdefault("llama.cpp build", f"{result.get('build_commit', '?')} ({result.get('cpu_info', '?')})")
    else:
        machine.setdefault("tinyllm kernels", report["kernels"])
        machine.setdefault("cpu", f"{report['cpu']}, {report['logical_cpus']} logical CPUs, {report['physical_cores']} physical cores")
        for result in report["results"]:
            key = (model, result["test"], int(threads))
            groups.setdefault(key, {}).setdefault(engine, []).append((result["tokens_per_second"], result["tokens_per_second_std"], report["repetitions"]))
            if result["test"].startswith("tg") and result["tokens_per_second"] > 0:
                bytes_per_token = result["weight_gb_per_second"] / result["tokens_per_second"]
                previous = decode.get((model, int(threads)), (bytes_per_token, None))
                decode[(model, int(threads))] = (bytes_per_token, result.get("read_bandwidth_gb_per_second") or previous[1])
    for test_key in [k for k in groups if k[0] == model and k not in order]:
        order.append(test_key)

rows = []
for model, test, threads in order:
    engines = groups[(model, test, threads)]
    cells = [model, test, str(threads)]
    means = {}
    for engine in ("llama.cpp", "tinyllm"):
        if engine in engines:
            mean, std = pool(engines[engine])
            means[engine] = mean
            cells.append(f"{mean:.2f} ± {std:.2f}")
        else:
            cells.append("-")
    cells.append(f"{means['tinyllm'] / means['llama.cpp']:.2f}" if len(means) == 2 else "-")
    roofline = []
    bytes_per_token, bandwidth = decode.get((model, threads), (None, None))
    for engine in ("llama.cpp", "tinyllm"):
        if test.startswith("tg") and bandwidth and engine in means:
            roofline.append(f"{100 * means[engine] * bytes_per_token / bandwidth:.0f}%")
        else:
            roofline.append("-")
    cells.append(" / ".join(roofline) if test.startswith("tg") else "-")
    rows.append(cells)

header = ["model", "test", "threads", "llama.cpp tok/s", "tinyllm tok/s", "tinyllm/llama.cpp", "decode roofline llama.cpp / tinyllm"]
print(f"llama.cpp: {llama_version}, build {machine.get('llama.cpp build', '?')}")
print(f"tinyllm:   {tinyllm_version}, kernels {machine.get('tinyllm kernels', '?')}")
print(f"machine:   {machine.get('cpu', '?')}")
print(f"1-minute load average before each run: {min(loads):.2f} to {max(loads):.2f}")
for (model, threads), (bytes_per_token, bandwidth) in sorted(decode.items()):
    if bandwidth:
        print(f"decode reads {bytes_per_token * 1e3:.1f} MB per token for {model}; read bandwidth {bandwidth:.2f} GB/s with {threads} thread(s)")
print()
if markdown:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * 4) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
else:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    print("  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for cells in rows:
        print("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
EOF
