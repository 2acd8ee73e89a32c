//! The C and C++ examples, built against the library, produce the Rust API's greedy tokens and
//! text on the tiny fixture models and on SmolLM2.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{build_program, c_compiler, cxx_compiler, ffi_dir, fixture_model, ids_line, run_ok, rust_continue, rust_generate, smollm2, work_dir, FIXTURES};
use tinyllm::{ChatMessage, Model, Sampler, SamplerParams, Session, Tokenizer};

/// The examples, built once per test process.
struct Programs {
    generate: PathBuf,
    chat: PathBuf,
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let generate = work_dir().join("generate");
        build_program(&c_compiler(), &[ffi_dir().join("examples/generate.c")], &generate, &["-std=c11"]);
        let chat = work_dir().join("chat");
        build_program(&cxx_compiler(), &[ffi_dir().join("examples/chat.cpp")], &chat, &["-std=c++17"]);
        Programs { generate, chat }
    })
}

/// Runs the C example on `model` and compares its prompt ids, answer ids and text with the
/// Rust API's.
fn check_generate(model: &Path, prompt: &str, max_tokens: usize) -> String {
    let expected = rust_generate(model, prompt, max_tokens);
    let output = run_ok(
        Command::new(&programs().generate).args(["--ids", "-n", &max_tokens.to_string()]).arg(model).arg(prompt),
        "running generate",
    );
    let stdout = String::from_utf8(output.stdout).expect("the answer is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(ids_line(&stderr, "prompt ids"), expected.prompt_ids, "{}: prompt ids", model.display());
    assert_eq!(ids_line(&stderr, "ids"), expected.ids, "{}: answer ids", model.display());
    assert_eq!(stdout, format!("{}\n", expected.text), "{}: answer text", model.display());
    assert!(!expected.ids.is_empty(), "{}: the model generated nothing, so the comparison is empty", model.display());
    stdout
}

#[test]
fn generate_matches_rust_on_fixtures() {
    for name in FIXTURES {
        check_generate(&fixture_model(name), "Write a short story about a robot.", 20);
    }
}

#[test]
fn generate_matches_rust_on_smollm2() {
    let Some(model) = smollm2("generate_matches_rust_on_smollm2") else { return };
    let answer = check_generate(&model, "What is the capital of France?", 24);
    assert!(answer.contains("Paris"), "answer: {answer:?}");
}

#[test]
fn generate_raw_prompt_matches_rust() {
    let model_path = fixture_model("qwen3");
    let prompt = "Once upon a time";
    let model = Model::open(&model_path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let prompt_ids = tokenizer.encode(prompt, true).unwrap();
    let mut session = Session::new(&model, None);
    let mut sampler = Sampler::new(SamplerParams::greedy());
    let (ids, text) = rust_continue(&mut session, &tokenizer, &mut sampler, &prompt_ids, 16);

    let output = run_ok(Command::new(&programs().generate).args(["--raw", "--ids", "-n", "16"]).arg(&model_path).arg(prompt), "running generate --raw");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(ids_line(&stderr, "prompt ids"), prompt_ids);
    assert_eq!(ids_line(&stderr, "ids"), ids);
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("{text}\n"));
}

#[test]
fn generate_rejects_missing_model() {
    let output = Command::new(&programs().generate).args(["/nonexistent/model.tllm", "hi"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tinyllm_model_load failed"), "stderr: {stderr}");
    assert!(stderr.contains("/nonexistent/model.tllm"), "stderr: {stderr}");
}

/// Generates the Rust API's answers to `turns` with the C++ example's steps: the whole conversation
/// rendered each turn, the shared prefix of the cache kept, greedy decoding.
fn rust_chat(model_path: &Path, turns: &[&str], max_tokens: usize) -> Vec<(Vec<u32>, String)> {
    let model = Model::open(model_path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let mut session = Session::new(&model, None);
    let mut sampler = Sampler::new(SamplerParams::greedy());
    let mut messages = Vec::new();
    let mut answers = Vec::new();
    for turn in turns {
        messages.push(ChatMessage::new("user", *turn));
        let tokens = tokenizer.encode(&tokenizer.apply_chat_template(&messages, true).unwrap(), false).unwrap();
        let shared = session.tokens().iter().zip(&tokens).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
        session.truncate(shared);
        let budget = max_tokens.min(session.context() - tokens.len());
        let (ids, text) = rust_continue(&mut session, &tokenizer, &mut sampler, &tokens[shared..], budget);
        messages.push(ChatMessage::new("assistant", tokenizer.decode(&ids, true).unwrap()));
        answers.push((ids, text));
    }
    answers
}

/// Runs the C++ example with `turns` on standard input and compares each answer with the Rust API's.
fn check_chat(model: &Path, turns: &[&str], max_tokens: usize) {
    let expected = rust_chat(model, turns, max_tokens);
    let mut child = Command::new(&programs().chat)
        .args(["--ids", "-n", &max_tokens.to_string()])
        .arg(model)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = turns.iter().map(|turn| format!("{turn}\n")).collect();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("the answers are UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chat exited with {}:\n{stderr}", output.status);

    let id_lines: Vec<Vec<u32>> = stderr
        .lines()
        .filter(|line| line.starts_with("ids:"))
        .map(|line| line["ids:".len()..].split_whitespace().map(|id| id.parse().unwrap()).collect())
        .collect();
    let expected_ids: Vec<Vec<u32>> = expected.iter().map(|(ids, _)| ids.clone()).collect();
    assert_eq!(id_lines, expected_ids, "{}: answer ids per turn", model.display());
    let expected_text: String = expected.iter().map(|(_, text)| format!("{text}\n")).collect();
    assert_eq!(stdout, expected_text, "{}: answer text", model.display());
}

#[test]
fn chat_matches_rust_on_fixtures() {
    for name in FIXTURES {
        check_chat(&fixture_model(name), &["Hello there.", "Tell me more about it.", "Thanks!"], 12);
    }
}

#[test]
fn chat_matches_rust_on_smollm2() {
    let Some(model) = smollm2("chat_matches_rust_on_smollm2") else { return };
    check_chat(&model, &["What is the capital of France?", "And of Germany?"], 16);
}
