//! The `tinyllm-train` binary: a run killed with SIGKILL resumes to the same weights as an
//! uninterrupted run, distillation writes its outputs, and bad configurations fail cleanly.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures_dir;

const BINARY: &str = env!("CARGO_BIN_EXE_tinyllm-train");

/// Writes tokenized training and development data for the fixture vocabulary (1000 tokens).
fn write_data(dir: &Path) {
    let line = |i: usize, len: usize| {
        let ids: Vec<u32> = (0..len).map(|t| ((i * 37 + t * 11) % 990) as u32 + 3).collect();
        let mask: Vec<u8> = (0..len).map(|t| (t >= len / 3) as u8).collect();
        serde_json::json!({ "ids": ids, "loss_mask": mask }).to_string()
    };
    let train: Vec<String> = (0..48).map(|i| line(i, 12 + i % 9)).collect();
    let dev: Vec<String> = (100..106).map(|i| line(i, 16)).collect();
    std::fs::write(dir.join("train.jsonl"), train.join("\n")).unwrap();
    std::fs::write(dir.join("dev.jsonl"), dev.join("\n")).unwrap();
}

fn write_sft_config(dir: &Path, out: &str, steps: u64) -> PathBuf {
    let model = fixtures_dir().join("models/llama-gqa");
    let text = format!(
        r#"
[model]
path = "{}"

[data]
train = "train.jsonl"
dev = "dev.jsonl"
seq_len = 48

[train]
seed = 3
max_steps = {steps}
batch_size = 2
grad_accum = 2
lr = 3e-3
warmup_steps = 5
eval_every = 20
checkpoint_every = 5
keep_checkpoints = 2

[output]
dir = "{out}"
"#,
        model.display()
    );
    let path = dir.join(format!("{out}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, command: &str) -> std::process::Output {
    Command::new(BINARY).args([command, "--quiet", "--config"]).arg(config).output().unwrap()
}

#[test]
fn killed_run_resumes_to_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let steps = 120;

    let straight = write_sft_config(dir.path(), "straight", steps);
    let output = run(&straight, "sft");
    assert!(output.status.success(), "uninterrupted run failed: {}", String::from_utf8_lossy(&output.stderr));

    let killed = write_sft_config(dir.path(), "killed", steps);
    let mut child = Command::new(BINARY).args(["sft", "--quiet", "--config"]).arg(&killed).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let first_checkpoint = dir.path().join("killed/checkpoints/step-00000010");
    let started = Instant::now();
    while !first_checkpoint.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Child::kill sends SIGKILL on Unix: no destructor or flush runs.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.path().join("killed/final").exists(), "the run finished before the kill; make it longer");

    let output = run(&killed, "sft");
    assert!(output.status.success(), "resumed run failed: {}", String::from_utf8_lossy(&output.stderr));
    let expected = std::fs::read(dir.path().join("straight/final/model.safetensors")).unwrap();
    let actual = std::fs::read(dir.path().join("killed/final/model.safetensors")).unwrap();
    assert!(expected == actual, "weights after kill and resume differ from the uninterrupted run");
    assert!(dir.path().join("killed/model.tllm").is_file(), "model.tllm missing");

    let metrics = std::fs::read_to_string(dir.path().join("killed/metrics.jsonl")).unwrap();
    let steps_logged: Vec<u64> = metrics.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert_eq!(steps_logged, vec![20, 40, 60, 80, 100, 120], "metrics after resume");
}

#[test]
fn distill_from_teacher_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let teacher = fixtures_dir().join("models/qwen2");
    let text = format!(
        r#"
[teacher]
path = "{}"

[student]
init = "from_teacher"
layers = [1]
ffn_dim = 64

[data]
train = "train.jsonl"
dev = "dev.jsonl"
seq_len = 48

[train]
max_steps = 6
batch_size = 2
lr = 1e-3
eval_every = 3

[distill]
divergence = "jsd"
temperature = 2.0
alpha = 0.7
top_k = 16

[output]
dir = "run"
"#,
        teacher.display()
    );
    let config = dir.path().join("distill.toml");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, "distill");
    assert!(output.status.success(), "distill failed: {}", String::from_utf8_lossy(&output.stderr));
    for file in ["teacher-topk/train.topk", "teacher-topk/dev.topk", "metrics.jsonl", "loss.svg", "final/config.json", "model.tllm"] {
        assert!(dir.path().join("run").join(file).exists(), "{file} missing");
    }
    let config_json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("run/final/config.json")).unwrap()).unwrap();
    assert_eq!(config_json["num_hidden_layers"], 1);
    assert_eq!(config_json["intermediate_size"], 64);
    let runtime = tinyllm::Model::open(dir.path().join("run/model.tllm")).unwrap();
    assert_eq!(runtime.metadata().layers.len(), 1);
}

#[test]
fn unknown_config_key_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let config = write_sft_config(dir.path(), "bad", 2);
    let text = std::fs::read_to_string(&config).unwrap().replace("batch_size = 2", "batchsize = 2");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, "sft");
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("batchsize"), "message: {message}");
    assert!(message.contains("bad.toml"), "message: {message}");
    assert!(!message.contains("panicked"), "message: {message}");
}

#[test]
fn missing_model_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let config = write_sft_config(dir.path(), "missing", 2);
    let text = std::fs::read_to_string(&config).unwrap().replace("llama-gqa", "no-such-model");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, "sft");
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("no-such-model"), "message: {message}");
    assert!(message.contains("not found"), "message: {message}");
}

#[test]
fn example_configs_parse() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for name in ["sft.toml", "distill.toml"] {
        tinyllm_train::config::RunConfig::read(&configs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
