//! A conversion killed at any moment leaves the output either absent (or the previous file,
//! unchanged) or complete and valid, never partial. The next conversion removes the killed
//! run's temporary file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kill points per scenario, spread over the time an uninterrupted conversion takes.
const KILLS: u32 = 12;

fn shared_gguf() -> Option<PathBuf> {
    let shared = std::env::var_os("TINYLLM_SHARED").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipping: {} not found (set TINYLLM_SHARED)", path.display());
        None
    }
}

fn converter(input: &Path, output: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tinyllm-convert"));
    // f32 output makes the conversion long enough (about a second) to kill it midway.
    command.arg(input).arg("-o").arg(output).args(["--dtype", "f32"]).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// What is at `output` after a kill: nothing, the previous file, or a complete model.
fn check_output(output: &Path, previous: Option<&[u8]>, kill: u32) -> &'static str {
    let Ok(bytes) = std::fs::read(output) else {
        assert!(previous.is_none(), "kill {kill}: the previous output disappeared");
        return "absent";
    };
    if previous == Some(&bytes[..]) {
        return "previous";
    }
    let model = tinyllm::Model::open(output).unwrap_or_else(|e| panic!("kill {kill}: the output is partial or invalid: {e}"));
    model.verify_tensors().unwrap_or_else(|e| panic!("kill {kill}: the output's tensors are damaged: {e}"));
    "complete"
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

/// Serializes the tests of this file: two conversions at once on a small machine make each run
/// slower than the timing run, and then every kill lands before the rename.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn kill_at_points(input: &Path, dir: &Path, previous: Option<&[u8]>) {
    let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = dir.join("model.tllm");
    let started = Instant::now();
    let status = converter(input, &dir.join("timing.tllm")).status().unwrap();
    assert!(status.success(), "an uninterrupted conversion succeeds");
    let full = started.elapsed();
    std::fs::remove_file(dir.join("timing.tllm")).unwrap();

    let mut seen = std::collections::BTreeMap::new();
    for kill in 0..KILLS {
        if let Some(previous) = previous {
            std::fs::write(&output, previous).unwrap();
        }
        // Points from the start of the process to well past the end of a normal run.
        let delay = full.mul_f64(1.5 * f64::from(kill) / f64::from(KILLS - 1));
        let mut child = converter(input, &output).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        *seen.entry(check_output(&output, previous, kill)).or_insert(0) += 1;
        if previous.is_none() {
            let _ = std::fs::remove_file(&output);
        }
    }
    eprintln!("{} kills over {:?}: {seen:?}", KILLS, full.mul_f64(1.5));
    assert!(seen.len() >= 2 || full < Duration::from_millis(50), "the kill points cover both sides of the rename: {seen:?}");

    // A later conversion to the same output removes what the killed ones left behind.
    let status = converter(input, &output).status().unwrap();
    assert!(status.success());
    assert_eq!(temporaries(dir), Vec::<String>::new(), "temporary files left after a successful conversion");
    check_output(&output, None, KILLS);
}

#[test]
fn killed_conversion_leaves_no_partial_output() {
    let Some(input) = shared_gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    kill_at_points(&input, dir.path(), None);
}

#[test]
fn killed_conversion_keeps_the_previous_output() {
    let Some(input) = shared_gguf() else { return };
    let dir = tempfile::tempdir().unwrap();
    let previous = b"the previous output, which a failed conversion must keep".to_vec();
    kill_at_points(&input, dir.path(), Some(&previous));
}
