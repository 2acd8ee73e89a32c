//! The real SmolLM2-135M-Instruct model (GGUF Q4_1, converted to f32): logits, greedy answer,
//! chat template and tokenizer ids against transformers, which loads the same GGUF.

use std::path::PathBuf;
use std::sync::OnceLock;

use tinyllm::{ChatMessage, DType, Model, Session, Tokenizer};
use tinyllm_convert::{convert, ConvertOptions};
use tinyllm_tests::{fixtures_dir, greedy, ids, max_abs_diff, read_f32, read_json, shared_dir};

/// Relative tolerance on logits: max |difference| below 1e-4 × max |logit|.
const RELATIVE_TOLERANCE: f32 = 1e-4;

/// Converts the GGUF once per test process; `None` when the shared inputs are absent.
fn converted() -> Option<&'static PathBuf> {
    // Written under cargo's per-target temporary folder and replaced on each run, so no
    // copy of the 515 MB file is left behind in the system temporary folder.
    static CONVERTED: OnceLock<Option<PathBuf>> = OnceLock::new();
    CONVERTED
        .get_or_init(|| {
            let shared = shared_dir("SmolLM2 tests")?;
            let gguf = shared.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smollm2-f32.tllm");
            convert(&gguf, &path, &ConvertOptions::float(DType::F32)).expect("the real model converts");
            Some(path)
        })
        .as_ref()
}

fn reference() -> serde_json::Value {
    read_json(&fixtures_dir().join("smollm2/reference.json"))
}

#[test]
fn prompt_logits_match_transformers() {
    let Some(path) = converted() else { return };
    let model = Model::open(path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let reference = reference();
    for prompt in reference["prompts"].as_array().unwrap() {
        let text = prompt["text"].as_str().unwrap();
        let expected_ids = ids(&prompt["input_ids"]);
        let add_special = prompt["add_special_tokens"].as_bool().unwrap();
        assert_eq!(tokenizer.encode(text, add_special).unwrap(), expected_ids, "ids of {text:?}");

        let mut session = Session::new(&model, None);
        let all = session.eval_all_logits(&expected_ids).unwrap().to_vec();
        let vocab = model.metadata().vocab_size as usize;
        let last = &all[all.len() - vocab..];
        let expected = read_f32(&fixtures_dir().join("smollm2").join(prompt["last_logits_file"].as_str().unwrap()));
        let (diff, scale) = max_abs_diff(last, &expected);
        eprintln!("{text:?}: last position max |diff| {diff:.3e}, max |logit| {scale:.3}, ratio {:.3e}", diff / scale);
        assert!(diff < RELATIVE_TOLERANCE * scale, "{text:?}: max |diff| {diff} >= 1e-4 x {scale}");

        // Every position: the 16 most likely tokens transformers recorded.
        for (position, topk) in prompt["topk"].as_array().unwrap().iter().enumerate() {
            let row = &all[position * vocab..(position + 1) * vocab];
            let top_ids = ids(&topk["ids"]);
            let top_logits: Vec<f32> = topk["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let ours: Vec<f32> = top_ids.iter().map(|&id| row[id as usize]).collect();
            let (diff, _) = max_abs_diff(&ours, &top_logits);
            let scale = row.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            assert!(diff < RELATIVE_TOLERANCE * scale, "{text:?} position {position}: top-16 max |diff| {diff}");
            assert_eq!(tinyllm_tests::argmax(row), top_ids[0], "{text:?} position {position}: top-1 token");
        }
    }
}

#[test]
fn chat_answer_matches_transformers() {
    let Some(path) = converted() else { return };
    let model = Model::open(path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let chat = &reference()["chat"];

    let question = chat["question"].as_str().unwrap();
    let text = tokenizer.apply_chat_template(&[ChatMessage::new("user", question)], true).unwrap();
    assert_eq!(text, chat["text"].as_str().unwrap(), "rendered chat template");
    let prompt = tokenizer.encode(&text, false).unwrap();
    assert_eq!(prompt, ids(&chat["input_ids"]), "ids of the rendered chat");

    let expected = ids(&chat["new_tokens"]);
    assert_eq!(expected.len(), 32);
    let tokens = greedy(&model, &prompt, 32);
    assert_eq!(tokens, expected, "first 32 greedy tokens");

    let eos = chat["eos_token_id"].as_u64().unwrap() as u32;
    let answer_len = tokens.iter().position(|&t| t == eos).unwrap_or(tokens.len());
    let answer = tokenizer.decode(&tokens[..answer_len], true).unwrap();
    eprintln!("answer: {answer:?}");
    assert!(answer.contains("Paris"), "answer {answer:?} names Paris");
}

#[test]
fn gguf_tokenizer_matches_transformers() {
    let Some(path) = converted() else { return };
    let model = Model::open(path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let cases = reference()["tokenizer_cases"].as_array().unwrap().clone();
    assert!(cases.len() >= 40, "{} tokenizer cases", cases.len());
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let expected = ids(&case["ids"]);
        assert_eq!(tokenizer.encode(text, false).unwrap(), expected, "ids of {text:?}");
        assert_eq!(tokenizer.decode(&expected, false).unwrap(), text, "decoding the ids of {text:?}");
    }
}
