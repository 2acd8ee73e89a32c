//! ffi/tests/misuse.c runs every function with NULL handles, short buffers, bad files and values,
//! a context that outlives its model, and stopped and aborted generation. It is built plainly
//! and with AddressSanitizer and UndefinedBehaviorSanitizer.

mod common;

use std::process::Command;

use common::{build_program, c_compiler, ffi_dir, fixture_model, run_ok};

/// Builds misuse.c with `flags` and runs it on a fixture model.
fn run_misuse(flags: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("misuse");
    let mut all_flags = vec!["-std=c11"];
    all_flags.extend_from_slice(flags);
    build_program(&c_compiler(), &[ffi_dir().join("tests/misuse.c")], &program, &all_flags);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut command = Command::new(&program);
    command.arg(fixture_model("llama-gqa")).arg(&scratch).envs(env.iter().copied());
    let output = run_ok(&mut command, "running misuse");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains(" 0 failed"), "misuse output:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn misuse_returns_documented_statuses() {
    let stdout = run_misuse(&[], &[]);
    eprintln!("{stdout}");
}

#[test]
fn misuse_is_clean_under_sanitizers() {
    let stdout = run_misuse(
        &["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"],
        &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=23"), ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")],
    );
    eprintln!("{stdout}");
}
