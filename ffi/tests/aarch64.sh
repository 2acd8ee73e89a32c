#!/usr/bin/env bash
# Cross-builds libtinyllm for aarch64 Linux with Debian's Rust toolchain, builds the C example
# ffi/examples/generate.c against it with aarch64-linux-gnu-gcc, runs it under qemu on a model,
# and checks that it prints the token ids and text of the x86-64 build.
#
# Usage: ffi/tests/aarch64.sh [--install] MODEL [PROMPT]
#
#   --install  install the missing Debian packages first (needs root, or sudo, and apt)
#   MODEL      a .tllm model with a tokenizer and a chat template
#   PROMPT     the question (default: "Write a short story about a robot.")
#
# The program runs twice under qemu-aarch64-static: with QEMU_CPU=max (NEON, dotprod, i8mm) and
# with QEMU_CPU=cortex-a53 (NEON only), so both kinds of kernels the runtime may pick are run.
# The x86-64 reference is built with the rustup toolchain by install.sh, or taken from the
# folder TINYLLM_HOST_LIB_DIR when it is set (the test sets it to what cargo test built). The
# aarch64 build goes to target/debian, so that Debian's compiler never replaces what the rustup
# toolchain built in target/release.
#
# Exit status: 0 when everything matches, 1 on a failure or mismatch, 2 for invalid arguments,
# 77 when a tool is missing and --install was not given (the test reports a skip).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=aarch64-unknown-linux-gnu
debian_rustc=/usr/bin/rustc
debian_cargo=/usr/bin/cargo
target_dir=$repo_root/target/debian
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)

install=0
if [[ ${1:-} == --install ]]; then
    install=1
    shift
fi
if [[ $# -lt 1 || $# -gt 2 ]]; then
    sed -n '7,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi
model=$(realpath "$1")
prompt=${2:-"Write a short story about a robot."}

missing_tools() {
    local missing=()
    [[ -x $debian_rustc ]] || missing+=("$debian_rustc")
    [[ -x $debian_cargo ]] || missing+=("$debian_cargo")
    [[ -d /usr/lib/rustlib/$target/lib ]] || missing+=("/usr/lib/rustlib/$target/lib")
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(aarch64-linux-gnu-gcc)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-aarch64-static)
    printf '%s\n' "${missing[@]}"
}

missing=$(missing_tools)
if [[ -n $missing && $install -eq 1 ]]; then
    as_root=()
    [[ $EUID -eq 0 ]] || as_root=(sudo)
    "${as_root[@]}" dpkg --add-architecture arm64
    "${as_root[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y "${packages[@]}"
    missing=$(missing_tools)
fi
if [[ -n $missing ]]; then
    printf 'skipping the aarch64 check: missing %s; run with --install, or install the Debian packages %s\n' \
        "$(echo $missing)" "${packages[*]}" >&2
    exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> $("$debian_cargo" --version), $("$debian_rustc" --version)"
echo "==> building libtinyllm for $target with Debian's cargo (--locked: the lockfile is used as it is)"
(
    cd "$repo_root"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc RUSTC=$debian_rustc \
        "$debian_cargo" build --locked --release -p tinyllm-ffi --target "$target" --target-dir "$target_dir"
)
"$repo_root/ffi/install.sh" --prefix "$work/arm64" --no-build --target "$target" --target-dir "$target_dir" >/dev/null
file -L "$work/arm64/lib/libtinyllm.so.0" | grep -q 'ARM aarch64' || {
    echo "error: $work/arm64/lib/libtinyllm.so.0 is not an aarch64 library" >&2
    exit 1
}

echo "==> building the C example for $target"
aarch64-linux-gnu-gcc -std=c11 -O1 -Wall -Wextra -Werror "$repo_root/ffi/examples/generate.c" \
    -I "$work/arm64/include" -L "$work/arm64/lib" -ltinyllm -Wl,-rpath,"$work/arm64/lib" -o "$work/generate-arm64"

echo "==> building the x86-64 reference"
if [[ -n ${TINYLLM_HOST_LIB_DIR:-} ]]; then
    "$repo_root/ffi/install.sh" --prefix "$work/host" --from "$TINYLLM_HOST_LIB_DIR" >/dev/null
else
    "$repo_root/ffi/install.sh" --prefix "$work/host" >/dev/null
fi
cc -std=c11 -O1 "$repo_root/ffi/examples/generate.c" -I "$work/host/include" -L "$work/host/lib" -ltinyllm \
    -Wl,-rpath,"$work/host/lib" -o "$work/generate-host"
"$work/generate-host" --ids -n 16 "$model" "$prompt" >"$work/host.out" 2>"$work/host.err"

failed=0
for cpu in max cortex-a53; do
    echo "==> running under qemu-aarch64-static, QEMU_CPU=$cpu"
    QEMU_CPU=$cpu qemu-aarch64-static -L /usr/aarch64-linux-gnu "$work/generate-arm64" --ids -n 16 "$model" "$prompt" \
        >"$work/arm64-$cpu.out" 2>"$work/arm64-$cpu.err"
    if ! cmp -s "$work/host.out" "$work/arm64-$cpu.out" || ! diff <(grep 'ids:' "$work/host.err") <(grep 'ids:' "$work/arm64-$cpu.err"); then
        echo "error: the aarch64 output with QEMU_CPU=$cpu differs from x86-64" >&2
        echo "--- x86-64"; cat "$work/host.out" "$work/host.err"
        echo "--- aarch64"; cat "$work/arm64-$cpu.out" "$work/arm64-$cpu.err"
        failed=1
    else
        grep '^ids:' "$work/arm64-$cpu.err"
    fi
done
if [[ $failed -ne 0 ]]; then
    exit 1
fi
echo "aarch64: the C example printed the x86-64 tokens and text under QEMU_CPU=max and cortex-a53"
