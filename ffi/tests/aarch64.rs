//! The C example cross-built for aarch64 prints the x86-64 tokens under qemu: runs
//! ffi/tests/aarch64.sh. The cross build of the runtime and its dependencies takes minutes on
//! two cores, so the test runs only when TINYLLM_TEST_AARCH64=1 is set.

mod common;

use std::process::Command;

use common::{ffi_dir, fixture_model, profile_dir};

/// The exit code of aarch64.sh when a tool is missing.
const SKIPPED: i32 = 77;

#[test]
fn aarch64_example_matches_x86_64() {
    if std::env::var("TINYLLM_TEST_AARCH64").as_deref() != Ok("1") {
        eprintln!("skipping aarch64_example_matches_x86_64: set TINYLLM_TEST_AARCH64=1 to cross-build and run it under qemu");
        return;
    }
    let output = Command::new(ffi_dir().join("tests/aarch64.sh"))
        .arg(fixture_model("llama-gqa"))
        .env("TINYLLM_HOST_LIB_DIR", profile_dir().join("deps"))
        .output()
        .expect("aarch64.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(SKIPPED) {
        eprintln!("skipping aarch64_example_matches_x86_64: {stderr}");
        return;
    }
    assert!(output.status.success(), "aarch64.sh exited with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    eprintln!("{stdout}");
}
