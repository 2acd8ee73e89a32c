//! Runs every fuzz target's entry point on the committed seeds and on every input a fuzzer
//! once found failing (tests/fuzz-regressions/TARGET/), so that a fixed crash stays fixed
//! without a fuzzer installed.

use std::path::Path;
use std::time::Instant;

use tinyllm_tests::fuzz_input::TARGETS;

fn run_folder(dir: &Path, target: &str, run: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    paths.sort();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let started = Instant::now();
        run(&bytes);
        eprintln!("{target}: {} ({} bytes) in {:.1} ms", path.display(), bytes.len(), started.elapsed().as_secs_f64() * 1e3);
    }
    paths.len()
}

#[test]
fn fuzz_inputs_return_normally() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut total = 0;
    for (target, run) in TARGETS {
        total += run_folder(&root.join("fuzz-regressions").join(target), target, run);
        total += run_folder(&root.join("../fuzz/seeds").join(target), target, run);
    }
    assert!(total > 0, "no fuzz inputs found under tests/fuzz-regressions or fuzz/seeds");
}
