//! ffi/install.sh installs a working library: the layout and links, and the examples of
//! docs/c-api.md built with pkg-config (shared and static) and with CMake, each printing the
//! Rust API's greedy answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{c_compiler, cxx_compiler, ffi_dir, fixture_model, have_tool, profile_dir, run_ok, rust_generate, work_dir};

/// The prompt the documentation examples answer, and how many tokens they generate at most.
const PROMPT: &str = "Write a poem about the sea.";
const DOC_MAX_TOKENS: usize = 128;

/// A prefix filled by install.sh from the libraries cargo built for this test run.
struct Installed {
    prefix: PathBuf,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let prefix = work_dir().join("prefix with space");
        // `cargo test` updates the libraries in deps/ only, so they are installed from there.
        let mut command = Command::new(ffi_dir().join("install.sh"));
        command.arg("--prefix").arg(&prefix).arg("--from").arg(profile_dir().join("deps"));
        run_ok(&mut command, "running install.sh");
        Installed { prefix }
    })
}

/// Returns the code block of `language` in docs/c-api.md whose text contains `marker`.
fn doc_block(language: &str, marker: &str) -> String {
    let doc = std::fs::read_to_string(ffi_dir().join("../docs/c-api.md")).unwrap();
    let fence = format!("```{language}\n");
    let mut rest = doc.as_str();
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```\n").expect("a closed code block");
        if body[..end].contains(marker) {
            return body[..end].to_string();
        }
        rest = &body[end..];
    }
    panic!("docs/c-api.md has no ```{language} block containing {marker:?}");
}

/// Runs an example program on a fixture model and compares its output with the Rust API's.
fn check_answer(program: &Path, model: &Path) {
    let output = run_ok(Command::new(program).arg(model).arg(PROMPT), "running the documentation example");
    let expected = rust_generate(model, PROMPT, DOC_MAX_TOKENS);
    assert!(!expected.ids.is_empty(), "the fixture model generated nothing");
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{}\n", expected.text), "{}", program.display());
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let pkgconfig = installed().prefix.join("lib/pkgconfig");
    let output = run_ok(Command::new("pkg-config").env("PKG_CONFIG_PATH", pkgconfig).args(args), "running pkg-config");
    // pkg-config escapes spaces in paths with a backslash, as a shell would need.
    let text = String::from_utf8(output.stdout).unwrap();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            ' ' if !word.is_empty() => words.push(std::mem::take(&mut word)),
            ' ' => {}
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn install_lays_out_prefix() {
    let prefix = &installed().prefix;
    for file in ["include/tinyllm.h", "include/tinyllm.hpp", "lib/libtinyllm.a", "lib/pkgconfig/tinyllm.pc", "lib/pkgconfig/tinyllm-static.pc", "lib/cmake/tinyllm/tinyllmConfig.cmake", "lib/cmake/tinyllm/tinyllmConfigVersion.cmake"] {
        assert!(prefix.join(file).is_file(), "{file} is not installed");
    }
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    assert!(lib.join(format!("libtinyllm.so.{version}")).is_file());
    assert_eq!(std::fs::read_link(lib.join("libtinyllm.so")).unwrap(), Path::new("libtinyllm.so.0"));
    assert_eq!(std::fs::read_link(lib.join("libtinyllm.so.0")).unwrap(), PathBuf::from(format!("libtinyllm.so.{version}")));
    let header = std::fs::read(prefix.join("include/tinyllm.h")).unwrap();
    assert_eq!(header, std::fs::read(ffi_dir().join("include/tinyllm.h")).unwrap());
}

#[test]
fn pkg_config_links_shared_and_static() {
    if !have_tool("pkg-config", "pkg_config_links_shared_and_static") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("example.c");
    std::fs::write(&source, doc_block("c", "int main")).unwrap();
    let model = fixture_model("llama-gqa");

    let shared = dir.path().join("example");
    let mut command = Command::new(c_compiler());
    command.args(["-std=c11", "-Wall", "-Wextra", "-Werror"]).arg(&source).arg("-o").arg(&shared);
    command.args(pkg_config(&["--cflags", "--libs", "tinyllm"]));
    command.arg(format!("-Wl,-rpath,{}", installed().prefix.join("lib").display()));
    run_ok(&mut command, "linking with pkg-config tinyllm");
    check_answer(&shared, &model);

    let linked_static = dir.path().join("example_static");
    let mut command = Command::new(c_compiler());
    command.args(["-std=c11", "-Wall", "-Wextra", "-Werror"]).arg(&source).arg("-o").arg(&linked_static);
    command.args(pkg_config(&["--cflags", "--libs", "tinyllm-static"]));
    run_ok(&mut command, "linking with pkg-config tinyllm-static");
    let needed = run_ok(Command::new("readelf").arg("-d").arg(&linked_static), "reading the dynamic section");
    assert!(!String::from_utf8_lossy(&needed.stdout).contains("libtinyllm"), "the static example still needs libtinyllm.so");
    check_answer(&linked_static, &model);
}

#[test]
fn cxx_wrapper_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("example.cpp");
    std::fs::write(&source, doc_block("cpp", "int main")).unwrap();
    let program = dir.path().join("example_cpp");
    let lib = installed().prefix.join("lib");
    let mut command = Command::new(cxx_compiler());
    command.args(["-std=c++17", "-Wall", "-Wextra", "-Werror"]).arg(&source).arg("-o").arg(&program);
    command.arg("-I").arg(installed().prefix.join("include")).arg(format!("-L{}", lib.display())).arg("-ltinyllm");
    command.arg(format!("-Wl,-rpath,{}", lib.display()));
    run_ok(&mut command, "building the C++ example");
    check_answer(&program, &fixture_model("qwen3"));
}

#[test]
fn cmake_package_builds_example() {
    if !have_tool("cmake", "cmake_package_builds_example") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("CMakeLists.txt"), doc_block("cmake", "find_package(tinyllm")).unwrap();
    std::fs::write(project.join("example.c"), doc_block("c", "int main")).unwrap();
    let build = dir.path().join("build");
    let mut configure = Command::new("cmake");
    configure.arg("-S").arg(&project).arg("-B").arg(&build).arg(format!("-DCMAKE_PREFIX_PATH={}", installed().prefix.display()));
    configure.arg(format!("-DCMAKE_C_COMPILER={}", c_compiler()));
    run_ok(&mut configure, "configuring with cmake");
    run_ok(Command::new("cmake").arg("--build").arg(&build), "building with cmake");

    let model = fixture_model("qwen2");
    check_answer(&build.join("example"), &model);
    check_answer(&build.join("example_static"), &model);

    // A request for a newer version than the installed one fails to configure.
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    std::fs::write(newer.join("CMakeLists.txt"), "cmake_minimum_required(VERSION 3.16)\nproject(newer C)\nfind_package(tinyllm 0.2 REQUIRED)\n").unwrap();
    let output = Command::new("cmake")
        .arg("-S")
        .arg(&newer)
        .arg("-B")
        .arg(dir.path().join("newer-build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", installed().prefix.display()))
        .output()
        .unwrap();
    assert!(!output.status.success(), "find_package(tinyllm 0.2) accepted version {}", env!("CARGO_PKG_VERSION"));
}
