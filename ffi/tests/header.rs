//! The committed header agrees with the Rust definitions and the built library: cbindgen output,
//! struct layouts and enum values, exported symbols, SONAME, and C and C++ compilation.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use common::{built_shared_library, c_compiler, cxx_compiler, ffi_dir, run_ok};
use tinyllm_ffi::*;

/// Runs cbindgen on ffi/src with ffi/cbindgen.toml.
fn generated_header() -> String {
    let config = cbindgen::Config::from_file(ffi_dir().join("cbindgen.toml")).expect("ffi/cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi_dir().join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut bytes = Vec::new();
    bindings.write(&mut bytes);
    String::from_utf8(bytes).expect("the header is UTF-8")
}

#[test]
fn header_matches_cbindgen_output() {
    let path = ffi_dir().join("include/tinyllm.h");
    let generated = generated_header();
    if std::env::var_os("TINYLLM_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "{} differs from what ffi/src exports, first at line {}:\n  committed: {:?}\n  generated: {:?}\n\
             regenerate it with: TINYLLM_BLESS=1 cargo test -p tinyllm-ffi --release --test header",
            path.display(),
            line + 1,
            committed.lines().nth(line).unwrap_or("<end of file>"),
            generated.lines().nth(line).unwrap_or("<end of file>"),
        );
    }
}

/// C static assertions on every struct's size, alignment and field offsets, and on every enum
/// value, computed by the Rust compiler.
fn layout_assertions() -> String {
    let mut c = String::from("#include <stddef.h>\n#include <tinyllm.h>\n");
    let mut check = |expression: String, value: usize| {
        writeln!(c, "_Static_assert({expression} == {value}, \"{expression} differs from Rust ({value})\");").unwrap();
    };
    macro_rules! layout {
        ($type:ident { $($field:ident),* }) => {
            check(format!("sizeof({})", stringify!($type)), size_of::<$type>());
            check(format!("_Alignof({})", stringify!($type)), align_of::<$type>());
            $(check(format!("offsetof({}, {})", stringify!($type), stringify!($field)), offset_of!($type, $field));)*
        };
    }
    layout!(tinyllm_model_params { verify_tensors });
    layout!(tinyllm_layer_dims { n_heads, n_kv_heads, head_dim, ffn_dim });
    layout!(tinyllm_context_params { n_ctx });
    layout!(tinyllm_sampler_params { temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed });
    layout!(tinyllm_chat_message { role, content });
    layout!(tinyllm_generate_result { n_generated, stop_reason });
    check("sizeof(tinyllm_status)".into(), size_of::<tinyllm_status>());
    check("sizeof(tinyllm_stop_reason)".into(), size_of::<tinyllm_stop_reason>());
    check("sizeof(tinyllm_token)".into(), size_of::<tinyllm_token>());

    use tinyllm_status::*;
    for status in [
        TINYLLM_STATUS_OK,
        TINYLLM_STATUS_INVALID_ARGUMENT,
        TINYLLM_STATUS_IO,
        TINYLLM_STATUS_INVALID_MODEL,
        TINYLLM_STATUS_UNSUPPORTED,
        TINYLLM_STATUS_CONTEXT_FULL,
        TINYLLM_STATUS_BUFFER_TOO_SMALL,
        TINYLLM_STATUS_TOKENIZER,
        TINYLLM_STATUS_ABORTED,
        TINYLLM_STATUS_INVALID_TOKEN,
        TINYLLM_STATUS_INVALID_STATE,
        TINYLLM_STATUS_OUT_OF_MEMORY,
        TINYLLM_STATUS_INTERNAL,
    ] {
        check(format!("{status:?}"), status as usize);
    }
    use tinyllm_stop_reason::*;
    for reason in [TINYLLM_STOP_EOS, TINYLLM_STOP_MAX_TOKENS, TINYLLM_STOP_CALLBACK, TINYLLM_STOP_CONTEXT_FULL, TINYLLM_STOP_ABORTED] {
        check(format!("{reason:?}"), reason as usize);
    }
    check("TINYLLM_VERSION_MAJOR".into(), TINYLLM_VERSION_MAJOR as usize);
    check("TINYLLM_VERSION_MINOR".into(), TINYLLM_VERSION_MINOR as usize);
    check("TINYLLM_VERSION_PATCH".into(), TINYLLM_VERSION_PATCH as usize);
    check("TINYLLM_ABI_VERSION".into(), TINYLLM_ABI_VERSION as usize);
    c
}

#[test]
fn struct_layouts_match_rust() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("layout.c");
    std::fs::write(&source, layout_assertions()).unwrap();
    let mut command = Command::new(c_compiler());
    command.args(["-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"]).arg(ffi_dir().join("include")).arg(&source);
    run_ok(&mut command, "compiling the layout assertions");
}

/// Names of the functions the header declares: identifiers followed by `(` that are not
/// function pointer typedefs.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(ffi_dir().join("include/tinyllm.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines().filter(|line| !line.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(start) = rest.find("tinyllm_") {
            let tail = &rest[start..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let is_pointer_typedef = rest[..start].ends_with("(*");
            if tail[end..].starts_with('(') && !is_pointer_typedef {
                names.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn library_exports_header_functions() {
    let output = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(built_shared_library()), "listing symbols");
    let exported: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .filter(|name| name.starts_with("tinyllm_"))
        .map(str::to_string)
        .collect();
    let declared = header_functions();
    assert!(declared.len() > 30, "found only {} functions in the header: {declared:?}", declared.len());
    let missing: Vec<_> = declared.difference(&exported).collect();
    let undeclared: Vec<_> = exported.difference(&declared).collect();
    assert!(missing.is_empty(), "declared in tinyllm.h but not exported by the library: {missing:?}");
    assert!(undeclared.is_empty(), "exported by the library but not declared in tinyllm.h: {undeclared:?}");
}

#[test]
fn soname_carries_abi_version() {
    let output = run_ok(Command::new("readelf").arg("-d").arg(built_shared_library()), "reading the dynamic section");
    let text = String::from_utf8_lossy(&output.stdout);
    let expected = format!("[libtinyllm.so.{TINYLLM_ABI_VERSION}]");
    let soname = text.lines().find(|line| line.contains("(SONAME)")).unwrap_or_else(|| panic!("no SONAME in:\n{text}"));
    assert!(soname.contains(&expected), "SONAME line {soname:?} should name {expected}; update ABI_VERSION in ffi/build.rs");
}

#[test]
fn headers_compile_as_c_and_cxx() {
    let dir = tempfile::tempdir().unwrap();
    let c_source = dir.path().join("strict.c");
    std::fs::write(&c_source, "#include <tinyllm.h>\nint main(void) { return tinyllm_abi_version() == TINYLLM_ABI_VERSION ? 0 : 1; }\n").unwrap();
    for standard in ["-std=c99", "-std=c11"] {
        let mut command = Command::new(c_compiler());
        command.args([standard, "-pedantic", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"]).arg(ffi_dir().join("include")).arg(&c_source);
        run_ok(&mut command, &format!("compiling tinyllm.h as {standard}"));
    }
    let cxx_source = dir.path().join("strict.cpp");
    std::fs::write(&cxx_source, "#include <tinyllm.hpp>\nint main() { return tinyllm::abi_version() == TINYLLM_ABI_VERSION ? 0 : 1; }\n").unwrap();
    let mut command = Command::new(cxx_compiler());
    command.args(["-std=c++17", "-pedantic", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"]).arg(ffi_dir().join("include")).arg(&cxx_source);
    run_ok(&mut command, "compiling tinyllm.hpp as C++17");
}
