//! Random tiny models made by transformers (tests/fixtures/generate.py): the runtime, on the
//! converted file, reproduces transformers' logits, greedy tokens and tokenizer ids.

use std::path::Path;

use tinyllm::{DType, KvType, Model, Session, Tokenizer};
use tinyllm_convert::{convert, ConvertOptions};
use tinyllm_tests::{fixtures_dir, greedy, ids, max_abs_diff, read_f32, read_json};

/// Relative tolerance on logits: max |difference| below 1e-4 × max |logit|.
const RELATIVE_TOLERANCE: f32 = 1e-4;
/// Relative tolerance with an f16 KV cache.
const F16_KV_TOLERANCE: f32 = 2e-3;
/// Relative tolerance with a Q8_0 KV cache. These random models measured 0.8% to 2.0%.
const Q8_0_KV_TOLERANCE: f32 = 3e-2;

fn check_model(name: &str, dtype: DType) {
    let dir = fixtures_dir().join("models").join(name);
    let reference = read_json(&dir.join("reference.json"));
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join(format!("{name}.tllm"));
    convert(&dir, &path, &ConvertOptions::float(dtype)).unwrap_or_else(|e| panic!("converting {name}: {e}"));
    let model = Model::open(&path).unwrap();
    assert_eq!(model.metadata().vocab_size as u64, reference["vocab_size"].as_u64().unwrap());

    for case in reference["cases"].as_array().unwrap() {
        let tokens = ids(&case["input_ids"]);
        let expected = read_f32(&dir.join(case["logits_file"].as_str().unwrap()));
        let mut session = Session::new(&model, None);
        let actual = session.eval_all_logits(&tokens).unwrap().to_vec();
        let (diff, scale) = max_abs_diff(&actual, &expected);
        let case_name = case["name"].as_str().unwrap();
        eprintln!("{name} ({dtype}) {case_name}: max |diff| {diff:.3e}, max |logit| {scale:.3}, ratio {:.3e}", diff / scale);
        assert!(diff < RELATIVE_TOLERANCE * scale, "{name} {case_name}: max |diff| {diff} >= 1e-4 x {scale}");

        // Decoding one token at a time through the KV cache gives the same logits as prefill.
        let mut session = Session::new(&model, None);
        let vocab = model.metadata().vocab_size as usize;
        for (t, &token) in tokens.iter().enumerate() {
            let step = session.eval(&[token]).unwrap();
            let (diff, _) = max_abs_diff(step, &expected[t * vocab..(t + 1) * vocab]);
            assert!(diff < RELATIVE_TOLERANCE * scale, "{name} {case_name} decode position {t}: max |diff| {diff}");
        }
    }

    // An f16 KV cache rounds keys and values to 11 significant bits; the logits stay within
    // 2e-3 of transformers' (relative to the largest logit), prefill and decode alike.
    for case in reference["cases"].as_array().unwrap() {
        let tokens = ids(&case["input_ids"]);
        let expected = read_f32(&dir.join(case["logits_file"].as_str().unwrap()));
        let mut session = Session::with_kv_type(&model, None, KvType::F16);
        let actual = session.eval_all_logits(&tokens).unwrap().to_vec();
        let (diff, scale) = max_abs_diff(&actual, &expected);
        let case_name = case["name"].as_str().unwrap();
        eprintln!("{name} ({dtype}) {case_name}, f16 KV cache: max |diff| {diff:.3e}, ratio {:.3e}", diff / scale);
        assert!(diff < F16_KV_TOLERANCE * scale, "{name} {case_name} with an f16 KV cache: max |diff| {diff} >= {F16_KV_TOLERANCE} x {scale}");
    }

    // A Q8_0 KV cache rounds each value to 1/254 of the largest magnitude in its block of 32.
    // Models whose head_dim is not a multiple of 32 refuse it with an error that names head_dim.
    let q8_0_fits = model.metadata().layers.iter().all(|l| l.head_dim % 32 == 0);
    for case in reference["cases"].as_array().unwrap() {
        let tokens = ids(&case["input_ids"]);
        let expected = read_f32(&dir.join(case["logits_file"].as_str().unwrap()));
        let mut session = Session::with_kv_type(&model, None, KvType::Q8_0);
        let case_name = case["name"].as_str().unwrap();
        match session.eval_all_logits(&tokens) {
            Ok(actual) => {
                assert!(q8_0_fits, "{name}: a Q8_0 KV cache ran a head_dim that is not a multiple of 32");
                let (diff, scale) = max_abs_diff(actual, &expected);
                eprintln!("{name} ({dtype}) {case_name}, Q8_0 KV cache: max |diff| {diff:.3e}, ratio {:.3e}", diff / scale);
                assert!(diff < Q8_0_KV_TOLERANCE * scale, "{name} {case_name} with a Q8_0 KV cache: max |diff| {diff} >= {Q8_0_KV_TOLERANCE} x {scale}");
            }
            Err(e) => {
                assert!(!q8_0_fits, "{name} {case_name} with a Q8_0 KV cache: {e}");
                let message = e.to_string();
                assert!(message.contains("q8_0"), "{name}: the error names the cache type: {message}");
                assert!(message.contains("head_dim"), "{name}: the error names head_dim: {message}");
            }
        }
    }

    // Two threads split matrix rows and attention heads; every value is computed by the same
    // operations as with one thread, so the logits are identical.
    for case in reference["cases"].as_array().unwrap() {
        let tokens = ids(&case["input_ids"]);
        let one = Session::with_kv_type(&model, None, KvType::F16).eval_all_logits(&tokens).unwrap().to_vec();
        let mut two = Session::with_kv_type(&model, None, KvType::F16);
        two.set_threads(2);
        assert_eq!(two.eval_all_logits(&tokens).unwrap(), one.as_slice(), "{name} {}: logits with 2 threads", case["name"]);
    }

    // A prompt longer than one forward batch (MAX_BATCH) runs in several batches; its logits
    // match decoding the same tokens one at a time.
    let vocab = model.metadata().vocab_size as usize;
    let long: Vec<u32> = (0..tinyllm::MAX_BATCH as u32 + 37).map(|i| (i * 7919 + 13) % vocab as u32).collect();
    let prefill = Session::new(&model, None).eval_all_logits(&long).unwrap().to_vec();
    assert_eq!(prefill.len(), long.len() * vocab, "{name}: one row of logits per token of a long prompt");
    let last = Session::new(&model, None).eval(&long).unwrap().to_vec();
    assert_eq!(last, prefill[(long.len() - 1) * vocab..], "{name}: eval of a long prompt returns its last row");
    let mut session = Session::new(&model, None);
    for (t, &token) in long.iter().enumerate() {
        let step = session.eval(&[token]).unwrap();
        let (diff, scale) = max_abs_diff(step, &prefill[t * vocab..(t + 1) * vocab]);
        assert!(diff < RELATIVE_TOLERANCE * scale, "{name}: long prompt, decode position {t}: max |diff| {diff}");
    }

    for case in reference["greedy"].as_array().unwrap() {
        let prompt = ids(&case["input_ids"]);
        let expected = ids(&case["new_tokens"]);
        assert_eq!(greedy(&model, &prompt, expected.len()), expected, "{name}: greedy tokens after {prompt:?}");
    }

    let tokenizer = Tokenizer::from_model(&model).unwrap();
    for case in reference["tokenizer_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tokenizer.encode(text, false).unwrap(), ids(&case["ids"]), "{name}: ids of {text:?}");
    }
}

fn storage_dtype(name: &str) -> DType {
    let reference = read_json(&Path::new(&fixtures_dir()).join("models").join(name).join("reference.json"));
    match reference["storage_dtype"].as_str().unwrap() {
        "float32" => DType::F32,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        other => panic!("unexpected storage dtype {other}"),
    }
}

#[test]
fn llama_gqa() {
    check_model("llama-gqa", DType::F32);
}

#[test]
fn llama_odd_sizes_and_llama3_rope() {
    check_model("llama-odd", DType::F32);
}

#[test]
fn qwen2_bias() {
    check_model("qwen2", DType::F32);
}

#[test]
fn qwen2_kept_in_bf16() {
    assert_eq!(storage_dtype("qwen2"), DType::BF16);
    check_model("qwen2", DType::BF16);
}

#[test]
fn qwen3_qk_norm() {
    check_model("qwen3", DType::F32);
}

#[test]
fn qwen3_kept_in_f16() {
    assert_eq!(storage_dtype("qwen3"), DType::F16);
    check_model("qwen3", DType::F16);
}
