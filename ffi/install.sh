#!/usr/bin/env bash
# Builds the tinyllm C library in release mode and installs it into a prefix: the shared and
# static libraries, the C and C++ headers, pkg-config files and a CMake package.
#
# Usage: ffi/install.sh --prefix DIR [--no-build] [--from DIR] [--target TRIPLE] [--target-dir DIR]
#                       [--cargo PROGRAM]
#
#   --prefix DIR       installation prefix, for example /usr/local or "$HOME/.local" (required)
#   --no-build         install what the target directory already contains instead of building
#   --from DIR         install libtinyllm_ffi.so and libtinyllm_ffi.a from DIR, without building
#   --target TRIPLE    install the library built for TRIPLE, for example aarch64-unknown-linux-gnu
#   --target-dir DIR   cargo's target directory (default: $CARGO_TARGET_DIR, else target/ in the
#                      workspace)
#   --cargo PROGRAM    the cargo that builds (default: cargo); Debian's /usr/bin/cargo builds for
#                      aarch64, see docs/c-api.md
#
# Installed files, for version X.Y.Z and binary interface (ABI) version A:
#   PREFIX/include/tinyllm.h, PREFIX/include/tinyllm.hpp
#   PREFIX/lib/libtinyllm.so.X.Y.Z, with the links libtinyllm.so.A (the SONAME) and libtinyllm.so
#   PREFIX/lib/libtinyllm.a
#   PREFIX/lib/pkgconfig/tinyllm.pc, PREFIX/lib/pkgconfig/tinyllm-static.pc
#   PREFIX/lib/cmake/tinyllm/tinyllmConfig.cmake, tinyllmConfigVersion.cmake
set -euo pipefail

ffi_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace_dir=$(dirname "$ffi_dir")

prefix=""
build=1
target=""
target_dir=${CARGO_TARGET_DIR:-$workspace_dir/target}
built_dir=""
cargo=cargo

usage() {
    sed -n '5,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --no-build) build=0; shift ;;
        --from) built_dir=${2:?--from needs a directory}; build=0; shift 2 ;;
        --target) target=${2:?--target needs a target triple}; shift 2 ;;
        --target-dir) target_dir=${2:?--target-dir needs a directory}; shift 2 ;;
        --cargo) cargo=${2:?--cargo needs a program}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) printf 'error: unknown argument %s\n' "$1" >&2; usage; exit 2 ;;
    esac
done
if [[ -z $prefix ]]; then
    printf 'error: --prefix is required, for example --prefix "$HOME/.local"\n' >&2
    exit 2
fi

if [[ $build -eq 1 ]]; then
    build_args=(build --release -p tinyllm-ffi --target-dir "$target_dir")
    if [[ -n $target ]]; then
        build_args+=(--target "$target")
    fi
    (cd "$workspace_dir" && "$cargo" "${build_args[@]}")
fi

built_dir=${built_dir:-$target_dir/${target:+$target/}release}
for file in libtinyllm_ffi.so libtinyllm_ffi.a; do
    if [[ ! -f $built_dir/$file ]]; then
        printf 'error: %s not found; build it first or run without --no-build\n' "$built_dir/$file" >&2
        exit 1
    fi
done

# The version and ABI version come from the header, which a test keeps equal to the Rust code.
header=$ffi_dir/include/tinyllm.h
macro() {
    sed -n "s/^#define $1 \([0-9][0-9]*\)$/\1/p" "$header"
}
major=$(macro TINYLLM_VERSION_MAJOR)
minor=$(macro TINYLLM_VERSION_MINOR)
patch=$(macro TINYLLM_VERSION_PATCH)
abi=$(macro TINYLLM_ABI_VERSION)
if [[ -z $major || -z $minor || -z $patch || -z $abi ]]; then
    printf 'error: cannot read the version macros from %s\n' "$header" >&2
    exit 1
fi
version=$major.$minor.$patch

# System libraries the Rust standard library needs on Linux with glibc when linked statically,
# as `rustc --print native-static-libs` lists them.
static_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
static_libs_cmake="gcc_s;util;rt;pthread;m;dl;c"

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
lib=$prefix/lib
mkdir -p "$prefix/include" "$lib/pkgconfig" "$lib/cmake/tinyllm"

install -m 644 "$ffi_dir/include/tinyllm.h" "$ffi_dir/include/tinyllm.hpp" "$prefix/include/"
install -m 755 "$built_dir/libtinyllm_ffi.so" "$lib/libtinyllm.so.$version"
ln -sfn "libtinyllm.so.$version" "$lib/libtinyllm.so.$abi"
ln -sfn "libtinyllm.so.$abi" "$lib/libtinyllm.so"
install -m 644 "$built_dir/libtinyllm_ffi.a" "$lib/libtinyllm.a"

# pkg-config splits its output at spaces unless they are escaped with a backslash in the .pc file.
pc_prefix=${prefix// /\\ }

# Escapes a value for the replacement side of a sed s||| command.
escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

substitute() {
    sed -e "s|@PREFIX@|$(escape "$pc_prefix")|g" \
        -e "s|@VERSION@|$version|g" \
        -e "s|@VERSION_MAJOR@|$major|g" \
        -e "s|@VERSION_MINOR@|$minor|g" \
        -e "s|@ABI_VERSION@|$abi|g" \
        -e "s|@STATIC_LIBS@|$static_libs|g" \
        -e "s|@STATIC_LIBS_CMAKE@|$static_libs_cmake|g" \
        "$1" > "$2"
}
substitute "$ffi_dir/pkgconfig/tinyllm.pc.in" "$lib/pkgconfig/tinyllm.pc"
substitute "$ffi_dir/pkgconfig/tinyllm-static.pc.in" "$lib/pkgconfig/tinyllm-static.pc"
substitute "$ffi_dir/cmake/tinyllmConfig.cmake.in" "$lib/cmake/tinyllm/tinyllmConfig.cmake"
substitute "$ffi_dir/cmake/tinyllmConfigVersion.cmake.in" "$lib/cmake/tinyllm/tinyllmConfigVersion.cmake"

printf 'installed tinyllm %s (ABI %s) into %s\n' "$version" "$abi" "$prefix"
