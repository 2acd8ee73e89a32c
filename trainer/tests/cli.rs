//! The `tinyllm-train` binary: a run killed with SIGKILL resumes to the same weights as an
//! uninterrupted run, a run killed at any point leaves each output complete or absent,
//! distillation writes its outputs, chat JSONL trains directly, the data
//! and eval commands run, and bad configurations fail cleanly.

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

/// Checks every output of a run folder that a killed run may have left: each is absent,
/// a temporary of an interrupted write (a name starting with a dot), or complete and valid.
/// Returns the names of the complete outputs.
fn complete_outputs(out: &Path) -> Vec<String> {
    let mut complete = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else { return complete };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match name.as_str() {
            _ if name.starts_with('.') => continue,
            "checkpoints" => {
                for checkpoint in std::fs::read_dir(&path).unwrap() {
                    let checkpoint = checkpoint.unwrap().path();
                    let step = checkpoint.file_name().unwrap().to_string_lossy().into_owned();
                    if step.starts_with('.') {
                        continue;
                    }
                    assert!(step.starts_with("step-"), "unexpected checkpoint entry {}", checkpoint.display());
                    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(checkpoint.join("state.json")).unwrap()).unwrap();
                    assert!(state["step"].as_u64().is_some(), "{}: state.json without a step", checkpoint.display());
                    for file in ["model.safetensors", "optimizer.safetensors"] {
                        tinyllm_train::safetensors_io::read(&checkpoint.join(file), candle_core::DType::F32, &candle_core::Device::Cpu)
                            .unwrap_or_else(|e| panic!("{}/{file}: {e}", checkpoint.display()));
                    }
                    complete.push(format!("checkpoints/{step}"));
                }
            }
            "final" => {
                tinyllm_train::model::load::load(&path, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap_or_else(|e| panic!("final/ does not load: {e}"));
                complete.push(name);
            }
            "model.tllm" => {
                let model = tinyllm::Model::open(&path).unwrap_or_else(|e| panic!("model.tllm does not open: {e}"));
                model.verify_tensors().unwrap_or_else(|e| panic!("model.tllm does not verify: {e}"));
                complete.push(name);
            }
            "metrics.jsonl" => {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("metrics.jsonl line {line:?}: {e}"));
                }
                complete.push(name);
            }
            "loss.svg" => {
                let svg = std::fs::read_to_string(&path).unwrap();
                assert!(svg.starts_with("<svg"), "loss.svg does not start with <svg: {} bytes", svg.len());
                assert!(svg.trim_end().ends_with("</svg>"), "loss.svg is cut: {} bytes", svg.len());
                complete.push(name);
            }
            _ => panic!("unexpected output {}", path.display()),
        }
    }
    complete.sort();
    complete
}

/// Names in `dir` and `dir/checkpoints` that start with a dot: temporaries of interrupted writes.
fn temporaries(out: &Path) -> Vec<String> {
    [out.to_path_buf(), out.join("checkpoints")]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn killed_run_leaves_complete_outputs_or_none() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let steps = 40;
    let straight = write_sft_config(dir.path(), "straight", steps);
    let started = Instant::now();
    let output = run(&straight, "sft");
    let duration = started.elapsed();
    assert!(output.status.success(), "uninterrupted run failed: {}", String::from_utf8_lossy(&output.stderr));
    let expected = std::fs::read(dir.path().join("straight/final/model.safetensors")).unwrap();

    // Kill points spread in time from the start (loading the model) to the end, then kills
    // when the final writes begin: the temporary final/ folder, final/ in place while
    // model.tllm is converted, and the converter's temporary file.
    let timed = 12;
    let final_writes: [(&str, fn(&Path) -> bool); 3] = [
        ("the temporary final/ appears", |out| temporaries(out).iter().any(|t| t.starts_with(".final."))),
        ("final/ appears", |out| out.join("final").exists()),
        ("the temporary model.tllm appears", |out| temporaries(out).iter().any(|t| t.starts_with(".model.tllm."))),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for k in 0..timed + final_writes.len() {
        let name = format!("killed-{k}");
        let config = write_sft_config(dir.path(), &name, steps);
        let out = dir.path().join(&name);
        let mut child = Command::new(BINARY).args(["sft", "--quiet", "--config"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let when = if k < timed {
            let fraction = (k as f64 + 0.5) / timed as f64;
            std::thread::sleep(duration.mul_f64(fraction));
            format!("at {:.0}% of the run", fraction * 100.0)
        } else {
            let (event, happened) = final_writes[k - timed];
            while !happened(&out) && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_micros(200));
            }
            format!("when {event}")
        };
        // Child::kill sends SIGKILL on Unix: no destructor or flush runs.
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        let complete = complete_outputs(&out);
        eprintln!("kill {k} {when}{}: complete {complete:?}, temporaries {:?}", if finished { " (the run had ended)" } else { "" }, temporaries(&out));
        seen.insert(complete.iter().any(|c| c.starts_with("checkpoints/")));

        let output = run(&config, "sft");
        assert!(output.status.success(), "run after kill {k} failed: {}", String::from_utf8_lossy(&output.stderr));
        let actual = std::fs::read(out.join("final/model.safetensors")).unwrap();
        assert!(expected == actual, "weights after kill {k} and resume differ from the uninterrupted run");
        assert!(complete_outputs(&out).contains(&"model.tllm".to_string()), "model.tllm missing after kill {k}");
        assert_eq!(temporaries(&out), Vec::<String>::new(), "temporaries left after the run that followed kill {k}");
    }
    assert_eq!(seen.len(), 2, "every kill fell on the same side of the first checkpoint; the run is too short to test");
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
fn distill_with_data_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chat.jsonl"), CHAT_JSONL).unwrap();
    let teacher = fixtures_dir().join("models/llama-gqa");
    let text = format!(
        r#"
[teacher]
path = "{}"

[student]
init = "from_teacher"
layers = [1]
vocabulary = "data"

[data]
train = "chat.jsonl"
dev = "chat.jsonl"
format = "chat"
seq_len = 1024

[train]
max_steps = 2
batch_size = 1
eval_every = 1

[distill]
top_k = 0

[output]
dir = "run"
"#,
        teacher.display()
    );
    let config = dir.path().join("vocab.toml");
    std::fs::write(&config, text).unwrap();
    let output = run(&config, "distill");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "distill failed: {stderr}");

    let config_json: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("run/final/config.json")).unwrap()).unwrap();
    let vocab = config_json["vocab_size"].as_u64().unwrap() as usize;
    let teacher_json = std::fs::read(teacher.join("tokenizer.json")).unwrap();
    let teacher_tokenizer = tokenizers::Tokenizer::from_bytes(&teacher_json).unwrap();
    assert!(vocab < teacher_tokenizer.get_vocab_size(true), "vocabulary of {vocab} tokens was not pruned");

    // The runtime reads the pruned model, and its tokenizer splits the training text as the
    // teacher's does, token for token.
    let model = tinyllm::Model::open(dir.path().join("run/model.tllm")).unwrap();
    assert_eq!(model.metadata().vocab_size as usize, vocab);
    let student_tokenizer = tinyllm::Tokenizer::from_model(&model).unwrap();
    for text in ["Weather in Paris?", "Rain in Oslo?", "Hello!"] {
        let student: Vec<String> = student_tokenizer.encode(text, false).unwrap().iter().map(|&id| student_tokenizer.decode(&[id], false).unwrap()).collect();
        let teacher: Vec<String> = teacher_tokenizer.encode(text, false).unwrap().get_ids().iter().map(|&id| teacher_tokenizer.decode(&[id], false).unwrap()).collect();
        assert_eq!(student, teacher, "{text:?}");
    }

    // The same run from a top-k cache over the student's tokens.
    let text = std::fs::read_to_string(&config).unwrap().replace("top_k = 0", "top_k = 8").replace(r#"dir = "run""#, r#"dir = "run-topk""#);
    std::fs::write(&config, text).unwrap();
    let output = run(&config, "distill");
    assert!(output.status.success(), "distill from a top-k cache failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("run-topk/teacher-topk/train.topk").is_file(), "train.topk missing");
    let model = tinyllm::Model::open(dir.path().join("run-topk/model.tllm")).unwrap();
    assert_eq!(model.metadata().vocab_size as usize, vocab);
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

/// Three chat conversations with a tool, a call and a plain reply.
const CHAT_JSONL: &str = r#"{"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
{"messages": [{"role": "user", "content": "Rain in Oslo?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}
"#;

fn write_chat_sft_config(dir: &Path, seq_len: usize) -> PathBuf {
    std::fs::write(dir.join("chat.jsonl"), CHAT_JSONL).unwrap();
    let model = fixtures_dir().join("models/llama-gqa");
    let text = format!(
        r#"
[model]
path = "{}"

[data]
train = "chat.jsonl"
dev = "chat.jsonl"
format = "chat"
seq_len = {seq_len}

[train]
max_steps = 1
batch_size = 1
eval_every = 1

[output]
dir = "chat-run"
"#,
        model.display()
    );
    let path = dir.join("chat.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sft_step_on_chat_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_chat_sft_config(dir.path(), 1024);
    let output = run(&config, "sft");
    assert!(output.status.success(), "sft on chat data failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("chat-run/model.tllm").is_file(), "model.tllm missing");
    let metrics = std::fs::read_to_string(dir.path().join("chat-run/metrics.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(line["step"], 1, "metrics: {metrics}");
    let dev_loss = line["dev_loss"].as_f64().unwrap_or_else(|| panic!("no dev_loss in {line}"));
    assert!(dev_loss.is_finite(), "dev loss {dev_loss}");
    assert!(dev_loss > 0.0, "dev loss {dev_loss}");
}

#[test]
fn chat_examples_mask_assistant_turns() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_chat_sft_config(dir.path(), 1024);
    let config = tinyllm_train::config::RunConfig::read(&config_path).unwrap();
    let model = tinyllm_train::model::load::load(&fixtures_dir().join("models/llama-gqa"), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let examples = tinyllm_train::train::dataset::read_examples(&config.data.train, config.data.format, config.data.seq_len, &model.metadata, model.tokenizer_json.as_deref()).unwrap();
    assert_eq!(examples.len(), 3);

    // The mask must match what the chat template marks as assistant text.
    let template = tinyllm_train::data::ChatTemplate::from_info(&model.metadata.tokenizer).unwrap();
    let tokenizer = tinyllm::Tokenizer::from_json(model.tokenizer_json.as_deref().unwrap(), model.metadata.tokenizer.clone()).unwrap();
    let conversations = tinyllm_train::data::read_conversations(&config.data.train).unwrap();
    for (example, conversation) in examples.iter().zip(&conversations) {
        let expected = template.tokenize(conversation, &tokenizer).unwrap();
        assert_eq!(example.ids, expected.ids);
        assert_eq!(example.loss_mask, expected.loss_mask);
        assert!(example.n_targets() > 0, "no target tokens");
        assert!(example.n_targets() < example.ids.len() / 2, "the prompt should not be a target");
    }
    let call_targets = tokenizer.decode(&template.tokenize(&conversations[0], &tokenizer).unwrap().masked_ids(), false).unwrap();
    assert!(call_targets.contains("\"name\": \"get_weather\""), "targets: {call_targets}");
    assert!(!call_targets.contains("Weather in Paris"), "targets: {call_targets}");
}

#[test]
fn chat_example_longer_than_seq_len_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_chat_sft_config(dir.path(), 16);
    let output = run(&config, "sft");
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("conversation 1 has"), "message: {message}");
    assert!(message.contains("seq_len = 16"), "message: {message}");
}

#[test]
fn data_and_eval_subcommands_run() {
    let dir = tempfile::tempdir().unwrap();
    let snips = dir.path().join("snips");
    std::fs::create_dir(&snips).unwrap();
    let utterance = |city: &str| serde_json::json!({"data": [{"text": "weather in "}, {"text": city, "entity": "city"}]});
    let file = serde_json::json!({"GetWeather": [utterance("Paris"), utterance("Oslo"), utterance("Rome"), utterance("Lima")]});
    std::fs::write(snips.join("train_GetWeather_full.json"), file.to_string()).unwrap();
    let out = dir.path().join("data");
    let output = Command::new(BINARY).args(["data", "snips", "--slot-descriptions", "none", "--dev-fraction", "0.5", "--input"]).arg(&snips).arg("--out").arg(&out).output().unwrap();
    assert!(output.status.success(), "data snips failed: {}", String::from_utf8_lossy(&output.stderr));
    let tools = std::fs::read_to_string(out.join("tools.json")).unwrap();
    assert!(tools.contains("get_weather"), "tools.json: {tools}");
    assert!(!tools.contains("description\": \"City"), "--slot-descriptions none left a description: {tools}");

    // The model needs a .tllm file; the sft run writes one.
    let config = write_chat_sft_config(dir.path(), 1024);
    let output = run(&config, "sft");
    assert!(output.status.success(), "sft failed: {}", String::from_utf8_lossy(&output.stderr));
    let report = dir.path().join("report.json");
    let output = Command::new(BINARY)
        .args(["eval", "--max-new-tokens", "8", "--model"])
        .arg(dir.path().join("chat-run/model.tllm"))
        .arg("--data")
        .arg(out.join("train.jsonl"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(output.status.success(), "eval failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert!(report["metrics"]["examples"].as_u64().unwrap() > 0, "report: {report}");
}

#[test]
fn example_configs_parse() {
    // Every run configuration under configs/ parses. eval.toml has its own schema, so it is skipped.
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut paths = Vec::new();
    for dir in [configs.clone(), configs.join("snips")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") && path.file_name().is_some_and(|n| n != "eval.toml") {
                paths.push(path);
            }
        }
    }
    assert!(paths.len() >= 9, "expected the 2 generic and 7 SNIPS run configurations, found {paths:?}");
    for path in &paths {
        tinyllm_train::config::RunConfig::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
