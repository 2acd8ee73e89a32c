//! The candle decoder reproduces transformers' logits on the fixture models and the tinyllm
//! runtime's logits on SmolLM2-135M; saved models load back with the same logits.

mod common;

use candle_core::{DType, Device};
use common::{fixtures_dir, max_abs_diff, read_f32, shared_dir};
use tinyllm::{Model, Session};
use tinyllm_train::model::load::load;
use tinyllm_train::model::save::{save_hf, save_tllm};
use tinyllm_train::{Decoder, ModelInput};

/// Relative tolerance on logits: max |difference| below 1e-4 × max |logit|.
const RELATIVE_TOLERANCE: f32 = 1e-4;

fn logits(model: &Decoder, ids: &[u32]) -> Vec<f32> {
    let input = ModelInput::single(ids, model.dtype(), model.device()).unwrap();
    model.forward(&input).unwrap().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn check_fixture(name: &str) {
    let dir = fixtures_dir().join("models").join(name);
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let model = load(&dir, DType::F32, &Device::Cpu).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let ids: Vec<u32> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let expected = read_f32(&dir.join(case["logits_file"].as_str().unwrap()));
        let (diff, scale) = max_abs_diff(&logits(&model, &ids), &expected);
        let case_name = case["name"].as_str().unwrap();
        eprintln!("{name} {case_name}: max |diff| {diff:.3e}, max |logit| {scale:.3}, ratio {:.3e}", diff / scale);
        assert!(diff < RELATIVE_TOLERANCE * scale, "{name} {case_name}: max |diff| {diff} >= 1e-4 x {scale}");
    }
}

#[test]
fn llama_gqa_matches_transformers() {
    check_fixture("llama-gqa");
}

#[test]
fn llama_odd_matches_transformers() {
    check_fixture("llama-odd");
}

#[test]
fn qwen2_matches_transformers() {
    check_fixture("qwen2");
}

#[test]
fn qwen3_matches_transformers() {
    check_fixture("qwen3");
}

#[test]
fn packed_examples_match_separate_runs() {
    let model = load(&fixtures_dir().join("models/qwen2"), DType::F32, &Device::Cpu).unwrap();
    let (a, b) = (vec![5u32, 17, 300, 42], vec![9u32, 8, 7]);
    let packed: Vec<u32> = a.iter().chain(&b).copied().collect();
    let input = ModelInput::new(&packed, &[0, 0, 0, 0, 1, 1, 1], 1, 7, DType::F32, &Device::Cpu).unwrap();
    let all: Vec<f32> = model.forward(&input).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let vocab = model.metadata.vocab_size as usize;
    let (diff_a, scale) = max_abs_diff(&all[..4 * vocab], &logits(&model, &a));
    let (diff_b, _) = max_abs_diff(&all[4 * vocab..], &logits(&model, &b));
    assert!(diff_a < 1e-5 * scale, "first example: {diff_a}");
    assert!(diff_b < 1e-5 * scale, "second example: {diff_b}");
}

#[test]
fn saved_hf_and_tllm_reload_with_same_logits() {
    let out = tempfile::tempdir().unwrap();
    for name in ["llama-odd", "qwen3"] {
        let model = load(&fixtures_dir().join("models").join(name), DType::F32, &Device::Cpu).unwrap();
        let ids = [3u32, 99, 250, 7, 12];
        let expected = logits(&model, &ids);

        let hf = out.path().join(format!("{name}-hf"));
        save_hf(&model, &hf).unwrap();
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            assert!(hf.join(file).is_file(), "{name}: {file} missing");
        }
        let reloaded = load(&hf, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(logits(&reloaded, &ids), expected, "{name}: HF round trip");

        let tllm = out.path().join(format!("{name}.tllm"));
        save_tllm(&model, &tllm).unwrap();
        let runtime = Model::open(&tllm).unwrap();
        let mut session = Session::new(&runtime, None);
        let (diff, scale) = max_abs_diff(session.eval_all_logits(&ids).unwrap(), &expected);
        assert!(diff < RELATIVE_TOLERANCE * scale, "{name}: runtime on saved .tllm differs by {diff}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn smollm2_gguf_matches_runtime() {
    let Some(shared) = shared_dir("smollm2_gguf_matches_runtime") else { return };
    let gguf = shared.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.is_file() {
        eprintln!("skipping smollm2_gguf_matches_runtime: {} not found", gguf.display());
        return;
    }
    let model = load(&gguf, DType::F32, &Device::Cpu).unwrap();
    let out = tempfile::tempdir().unwrap();
    let tllm = out.path().join("smollm2-f32.tllm");
    tinyllm_convert::convert(&gguf, &tllm, &tinyllm_convert::ConvertOptions::float(tinyllm::DType::F32)).unwrap();
    let runtime = Model::open(&tllm).unwrap();
    let tokenizer = tinyllm::Tokenizer::from_model(&runtime).unwrap();
    let ids = tokenizer.encode("The capital of France is Paris, and the capital of Italy is", false).unwrap();

    let vocab = model.metadata.vocab_size as usize;
    let ours = logits(&model, &ids);
    let mut session = Session::new(&runtime, None);
    let theirs = session.eval(&ids).unwrap().to_vec();
    let (diff, scale) = max_abs_diff(&ours[ours.len() - vocab..], &theirs);
    eprintln!("SmolLM2 last position: max |diff| {diff:.3e}, max |logit| {scale:.3}, ratio {:.3e}", diff / scale);
    assert!(diff < RELATIVE_TOLERANCE * scale, "max |diff| {diff} >= 1e-4 x {scale}");
}

/// Writes saved fixture models with candle's logits for trainer/tests/check_hf_load.py into
/// `$TINYLLM_HF_CHECK_DIR`; does nothing when the variable is unset.
#[test]
fn write_hf_check_models() {
    let Some(target) = std::env::var_os("TINYLLM_HF_CHECK_DIR") else { return };
    let target = std::path::PathBuf::from(target);
    for name in ["llama-gqa", "llama-odd", "qwen2", "qwen3"] {
        let model = load(&fixtures_dir().join("models").join(name), DType::F32, &Device::Cpu).unwrap();
        let ids = vec![3u32, 99, 250, 7, 12, 400, 5];
        let dir = target.join(name);
        save_hf(&model, &dir).unwrap();
        let reference = serde_json::json!({ "input_ids": ids, "logits": logits(&model, &ids) });
        std::fs::write(dir.join("candle_reference.json"), reference.to_string()).unwrap();
    }
}
