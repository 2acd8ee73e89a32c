#!/usr/bin/env bash
# Runs the test suite: installs missing tools, runs the workspace tests and builds the runtime
# without std for a Cortex-M4F. Then runs the kernel and golden tests for aarch64 under qemu,
# once per kernel table (NEON, dotprod, i8mm), and prints a summary. Exits non-zero if any step
# failed.
#
# Usage: scripts/test.sh
#
# Environment:
#   TINYLLM_SHARED  shared data folder for the tests (default ../shared from the repository root)
#   CHECK_FMT=1     also run `cargo fmt --check` (skipped by default, formatting is not required)
#   CHECK_CLIPPY=1  also run `cargo clippy` (skipped by default, clippy is optional)
#
# Missing Debian packages are installed with apt-get, as root or through sudo. The no_std and
# aarch64 builds use Debian's rustc-web packages because the rustup toolchain has only the x86-64
# standard library and cannot download another target.
set -euo pipefail

# Resolve a relative TINYLLM_SHARED against the caller's directory before changing to the root.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TINYLLM_SHARED=$(realpath -m "${TINYLLM_SHARED:-$repo_root/../shared}")
export TINYLLM_SHARED
cd "$repo_root"

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# Debian bookworm packages: rustc and cargo 1.96 as /usr/bin/rustc and /usr/bin/cargo, the arm64
# standard library, the library sources that -Z build-std compiles, an aarch64 linker and qemu.
cross_packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 rust-web-src
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
# Tools the C API tests use: g++ for the C++ example, valgrind for memcheck, cmake and
# pkg-config for the installed-package tests.
c_api_packages=(g++ valgrind cmake pkg-config)
debian_cargo=/usr/bin/cargo
debian_rustc=/usr/bin/rustc
no_std_target=thumbv7em-none-eabihf
# A separate target folder, so that Debian's compiler does not replace the rustup build in target/.
no_std_target_dir=target/thumbv7em

aarch64_target=aarch64-unknown-linux-gnu
# One target folder for the aarch64 build and all qemu runs, so that the runs rebuild nothing.
aarch64_target_dir=target/aarch64
# The aarch64 test binaries: every kernel table against an f64 reference and against the scalar
# table, and the runtime against transformers logits on tiny models.
aarch64_tests=(-p tinyllm -p tinyllm-tests
    --test kernels --test kernels_vs_scalar --test transformers_fixtures)
# qemu runs as QEMU_CPU:TINYLLM_ISA. Each processor model has the extensions of its table but
# not those of the next: cortex-a53 NEON without dotprod, cortex-a76 dotprod without i8mm, max
# i8mm. The last run leaves TINYLLM_ISA unset, so run-time detection picks the table and the
# tests compare every table the CPU supports.
aarch64_runs=(cortex-a53:neon cortex-a76:dotprod max:i8mm max:)
# qemu loads the aarch64 dynamic loader from the -L folder, but when libc6:arm64 is installed
# (libstd-rust-web-dev:arm64 pulls it in) the loader finds libc in /lib/aarch64-linux-gnu, a
# different build from the cross loader. With the cross loader 2.36-8cross1 and libc6:arm64
# 2.36-9+deb12u14, every program that starts a thread then hangs in pthread_create, test
# binaries included. LD_LIBRARY_PATH makes the loader take the cross libc that matches it.
aarch64_runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib"

# Runtime tests that Miri runs: file parsing, corrupt files, the sampler, and the block formats
# with the scalar kernels (Miri reports no SIMD extension, so only the scalar table runs).
miri_tests=(--test bad_input --test format_roundtrip --test sampler --test kernels)

step_names=()
step_results=()
step_seconds=()
failed=0

step() {
    printf '\n==> %s\n' "$*"
}

# Records the result of one step for the summary: NAME RESULT SECONDS.
record() {
    step_names+=("$1")
    step_results+=("$2")
    step_seconds+=("$3")
    if [[ $2 == FAILED ]]; then
        failed=1
    fi
}

# Runs a command as one summary step: NAME COMMAND [ARGS...].
run_step() {
    local name=$1
    shift
    step "$name"
    local start=$SECONDS
    if "$@"; then
        record "$name" passed $((SECONDS - start))
    else
        local status=$?
        printf 'error: %s failed with exit status %d\n' "$name" "$status" >&2
        record "$name" FAILED $((SECONDS - start))
    fi
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo --preserve-env=DEBIAN_FRONTEND "$@"
    else
        printf 'error: cannot run "%s": not root and sudo not found; run this script as root\n' "$*" >&2
        return 1
    fi
}

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# Installs the Debian packages given as arguments that are not installed yet.
install_packages() {
    local missing=() package
    for package in "$@"; do
        is_installed "$package" || missing+=("$package")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        printf 'already installed: %s\n' "$*"
        return 0
    fi
    command -v apt-get >/dev/null || {
        printf 'error: apt-get not found; install these packages by hand: %s\n' "${missing[*]}" >&2
        return 1
    }

    local needs_arm64=0
    for package in "${missing[@]}"; do
        [[ $package == *:arm64 ]] && needs_arm64=1
    done
    if [[ $needs_arm64 -eq 1 ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        printf 'adding the arm64 package architecture\n'
        as_root dpkg --add-architecture arm64 || return 1
    fi

    printf 'installing: %s\n' "${missing[*]}"
    # Wait for another apt or dpkg run to release its lock instead of failing at once.
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    as_root "${apt[@]}" update -q || return 1
    as_root "${apt[@]}" install -y -q "${missing[@]}"
}

install_tools() {
    # Rust comes from rustup, which may be missing from PATH in a non-login shell.
    if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
        export PATH=$HOME/.cargo/bin:$PATH
    fi
    if ! command -v cargo >/dev/null; then
        printf 'error: cargo not found; install Rust with rustup (https://rustup.rs)\n' >&2
        return 1
    fi
    cargo --version || return 1

    local packages=("${cross_packages[@]}" "${c_api_packages[@]}")
    # rustc links through the system C compiler.
    command -v cc >/dev/null || packages+=(gcc libc6-dev)
    install_packages "${packages[@]}"
}

# Cross-builds libtinyllm for aarch64, links the C example against it with
# aarch64-linux-gnu-gcc and runs it under qemu; it must print the x86-64 build's tokens.
c_example_aarch64() {
    TINYLLM_TEST_AARCH64=1 cargo test --release --locked -p tinyllm-ffi --test aarch64 -- --nocapture
}

workspace_tests() {
    printf 'TINYLLM_SHARED=%s\n' "$TINYLLM_SHARED"
    if [[ ! -d $TINYLLM_SHARED ]]; then
        printf 'warning: %s not found; tests that need the shared data will be skipped\n' "$TINYLLM_SHARED" >&2
    fi
    cargo test --workspace --release --locked
}

# Prints the cargo for the builds with Debian's rustc: Debian's, or rustup's where Debian's
# cannot read Cargo.lock. Lockfile version 4 needs cargo 1.78 or later (cargo pull request 12852).
select_no_std_cargo() {
    local version minor
    version=$("$debian_cargo" --version) || return 1
    minor=$(sed -n 's/^cargo 1\.\([0-9][0-9]*\)\..*/\1/p' <<<"$version")
    if [[ -n $minor && $minor -ge 78 ]]; then
        printf 'using %s (%s)\n' "$debian_cargo" "$version" >&2
        printf '%s\n' "$debian_cargo"
        return 0
    fi
    printf 'note: %s is "%s", too old to read Cargo.lock version 4; using rustup'"'"'s cargo with %s instead\n' \
        "$debian_cargo" "$version" "$debian_rustc" >&2
    command -v cargo
}

no_std_build() {
    if [[ ! -x $debian_cargo || ! -x $debian_rustc ]]; then
        printf 'error: %s or %s not found; the rustc-web and cargo-web packages did not install\n' \
            "$debian_cargo" "$debian_rustc" >&2
        return 1
    fi
    "$debian_rustc" --version || return 1
    local no_std_cargo
    no_std_cargo=$(select_no_std_cargo) || return 1

    RUSTC_BOOTSTRAP=1 RUSTC=$debian_rustc "$no_std_cargo" build --release --locked \
        -Z build-std=core,alloc --target "$no_std_target" --target-dir "$no_std_target_dir" \
        -p tinyllm --no-default-features --lib
}

# Runs cargo with Debian's rustc for aarch64 Linux on the aarch64 test binaries, linking with
# the cross gcc and running tests under qemu: aarch64_cargo [ENV_ASSIGNMENTS...] -- CARGO_ARGS...
aarch64_cargo() {
    local environment=()
    while [[ $1 != -- ]]; do
        environment+=("$1")
        shift
    done
    shift
    if [[ ! -x $debian_rustc ]]; then
        printf 'error: %s not found; the rustc-web package did not install\n' "$debian_rustc" >&2
        return 1
    fi
    local cargo_bin
    cargo_bin=$(select_no_std_cargo) || return 1

    env -u TINYLLM_ISA "${environment[@]}" \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$aarch64_runner" \
        RUSTC="$debian_rustc" "$cargo_bin" "$@" --release --locked \
        --target "$aarch64_target" --target-dir "$aarch64_target_dir" "${aarch64_tests[@]}"
}

aarch64_build() {
    aarch64_cargo -- test --no-run
}

# Runs the aarch64 tests under qemu: aarch64_test QEMU_CPU [TINYLLM_ISA].
aarch64_test() {
    local environment=(QEMU_CPU="$1")
    if [[ -n ${2:-} ]]; then
        environment+=(TINYLLM_ISA="$2")
    fi
    printf '%s\n' "${environment[*]}"
    aarch64_cargo "${environment[@]}" -- test --no-fail-fast
}

# The nightly toolchain with Miri, and cargo-fuzz: fetched through rustup and crates.io when
# missing.
install_nightly_tools() {
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal || return 1
    rustup component add miri rust-src --toolchain nightly || return 1
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || return 1
}

# Each fuzz target for a short time on its seeds and the committed regression inputs; the long
# campaign (fuzz/run.sh 1800) is run by hand, see docs/reliability.md.
fuzz_smoke() {
    FUZZ_JOBS=2 fuzz/run.sh "${FUZZ_SECONDS:-20}"
}

# The parsing, packing and scalar kernel code under Miri: undefined behaviour in unsafe code,
# out-of-bounds access and invalid values are errors even where the compiled code runs.
miri_tests() {
    # libm computes sqrt with inline assembly on x86-64, which Miri cannot run.
    MIRIFLAGS="-Zmiri-disable-isolation" cargo +nightly miri test --locked -p tinyllm \
        --features libm/force-soft-floats "${miri_tests[@]}" || return 1
    MIRIFLAGS="-Zmiri-disable-isolation" cargo +nightly miri test --locked -p tinyllm-convert --test gguf_reader
}

format_check() {
    cargo fmt --all --check
}

clippy_check() {
    cargo clippy --workspace --all-targets --release --locked -- -D warnings
}

total_start=$SECONDS

run_step "install tools" install_tools
run_step "cargo test (workspace, release)" workspace_tests
run_step "no_std build ($no_std_target)" no_std_build
run_step "aarch64 test build" aarch64_build
run_step "C example on aarch64 under qemu" c_example_aarch64
run_step "install nightly, Miri and cargo-fuzz" install_nightly_tools
run_step "Miri (parsing, packing, scalar kernels)" miri_tests
run_step "fuzz smoke (${FUZZ_SECONDS:-20} s per target)" fuzz_smoke
for run in "${aarch64_runs[@]}"; do
    cpu=${run%%:*}
    isa=${run#*:}
    run_step "qemu $cpu, TINYLLM_ISA=${isa:-unset}" aarch64_test "$cpu" "$isa"
done

if [[ ${CHECK_FMT:-0} == 1 ]]; then
    run_step "cargo fmt --check" format_check
else
    record "cargo fmt --check" "skipped (not required; CHECK_FMT=1 runs it)" 0
fi
if [[ ${CHECK_CLIPPY:-0} == 1 ]]; then
    run_step "cargo clippy" clippy_check
else
    record "cargo clippy" "skipped (optional; CHECK_CLIPPY=1 runs it)" 0
fi

printf '\n==> Summary\n'
for i in "${!step_names[@]}"; do
    printf '%-40s %6ss  %s\n' "${step_names[$i]}" "${step_seconds[$i]}" "${step_results[$i]}"
done
printf '%-40s %6ss\n' "total" $((SECONDS - total_start))

if [[ $failed -ne 0 ]]; then
    printf 'FAILED: at least one step failed; its output is above\n' >&2
    exit 1
fi
printf 'all steps passed\n'
