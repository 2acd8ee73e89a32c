//! The C example and the misuse and thread tests run clean under valgrind memcheck: no leaks, no
//! invalid reads or writes, no use of uninitialized memory.

mod common;

use std::path::Path;
use std::process::Command;

use common::{build_program, c_compiler, ffi_dir, fixture_model, have_tool, run_ok};

/// Runs `program` with `args` under memcheck. Valgrind exits with 99, a code the programs never
/// use, on any invalid access, use of uninitialized memory or leak. valgrind.supp names the
/// memory that statics of dependencies keep until exit.
fn memcheck(program: &Path, args: &[&std::ffi::OsStr]) -> String {
    let mut command = Command::new("valgrind");
    command.args([
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect,possible",
        "--track-origins=yes",
        "--error-exitcode=99",
    ]);
    command.arg(format!("--suppressions={}", ffi_dir().join("tests/valgrind.supp").display()));
    command.arg(program).args(args);
    let output = run_ok(&mut command, "running under valgrind");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn build(source: &str, name: &str, dir: &Path) -> std::path::PathBuf {
    let program = dir.join(name);
    build_program(&c_compiler(), &[ffi_dir().join(source)], &program, &["-std=c11", "-pthread"]);
    program
}

#[test]
fn generate_example_is_clean() {
    if !have_tool("valgrind", "generate_example_is_clean") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = build("examples/generate.c", "generate", dir.path());
    let model = fixture_model("qwen2");
    let stdout = memcheck(&program, &["--ids".as_ref(), "-n".as_ref(), "16".as_ref(), model.as_os_str(), "Tell me a joke.".as_ref()]);
    assert!(stdout.len() > 1, "generate printed nothing");
}

#[test]
fn misuse_test_is_clean() {
    if !have_tool("valgrind", "misuse_test_is_clean") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = build("tests/misuse.c", "misuse", dir.path());
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let model = fixture_model("llama-gqa");
    let stdout = memcheck(&program, &[model.as_os_str(), scratch.as_os_str()]);
    assert!(stdout.contains(" 0 failed"), "misuse output:\n{stdout}");
}

#[test]
fn threads_test_is_clean() {
    if !have_tool("valgrind", "threads_test_is_clean") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = build("tests/threads.c", "threads", dir.path());
    let model = fixture_model("llama-odd");
    let stdout = memcheck(&program, &[model.as_os_str(), "4".as_ref(), "8".as_ref()]);
    assert!(stdout.contains("threads: 4 matched, 0 failed"), "threads output:\n{stdout}");
}
