//! ffi/tests/threads.c: eight threads share one model, each with its own context, and produce
//! the same greedy tokens as one thread.

mod common;

use std::process::Command;

use common::{build_program, c_compiler, ffi_dir, fixture_model, run_ok, smollm2};

fn run_threads(model: &std::path::Path, threads: usize, max_tokens: usize) {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("threads");
    build_program(&c_compiler(), &[ffi_dir().join("tests/threads.c")], &program, &["-std=c11", "-pthread"]);
    let output = run_ok(Command::new(&program).arg(model).arg(threads.to_string()).arg(max_tokens.to_string()), "running threads");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(stdout.contains(&format!("threads: {threads} matched, 0 failed")), "threads output:\n{stdout}");
}

#[test]
fn eight_threads_match_one_on_fixtures() {
    for name in ["llama-gqa", "qwen3"] {
        run_threads(&fixture_model(name), 8, 24);
    }
}

#[test]
fn eight_threads_match_one_on_smollm2() {
    let Some(model) = smollm2("eight_threads_match_one_on_smollm2") else { return };
    run_threads(&model, 8, 8);
}
