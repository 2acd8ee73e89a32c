//! Writing and reading `.tllm` files: what is written is what is read.

mod common;

use common::{plans, tiny_metadata, values, write_model, Aligned};
use tinyllm::format::{Architecture, DType};
use tinyllm::tensor::TensorData;
use tinyllm::{Model, OpenOptions, Session};

#[test]
fn metadata_and_tensors_round_trip() {
    for architecture in [Architecture::Llama, Architecture::Qwen2, Architecture::Qwen3] {
        let metadata = tiny_metadata(architecture);
        let plans = plans(&metadata, DType::F16);
        let bytes = write_model(&metadata, &plans, b"{\"tokenizer\": 1}");
        let aligned = Aligned::new(&bytes);
        let model = Model::from_bytes_with(aligned.bytes(), OpenOptions { verify_tensors: true }).unwrap();
        assert_eq!(model.metadata(), &metadata);
        assert_eq!(model.tokenizer_json(), b"{\"tokenizer\": 1}");
        assert_eq!(model.tensors().len(), plans.len());
        for (entry, plan) in model.tensors().iter().zip(&plans) {
            assert_eq!(entry.name, plan.name);
            assert_eq!(entry.dtype, plan.dtype);
            assert_eq!(entry.shape, plan.shape);
            assert_eq!((model.header().data.offset + entry.offset) % 64, 0, "{} is 64-byte aligned", entry.name);
        }
    }
}

#[test]
fn tensor_views_hold_the_written_values() {
    let metadata = tiny_metadata(Architecture::Llama);
    let plans = plans(&metadata, DType::BF16);
    let bytes = write_model(&metadata, &plans, b"");
    let aligned = Aligned::new(&bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    let index = plans.iter().position(|p| p.name == "layers.1.ffn_up").unwrap();
    let expected = values(index as u64 + 1, 12 * 16, 0.5);
    let Some(TensorData::BF16(data)) = model.tensor("layers.1.ffn_up") else { panic!("ffn_up is bf16") };
    assert_eq!(data.len(), expected.len());
    for (stored, original) in data.iter().zip(&expected) {
        assert_eq!(*stored, half::bf16::from_f32(*original));
    }
    // Views point into the buffer itself: no copy was made.
    let start = aligned.bytes().as_ptr() as usize;
    let address = data.as_ptr() as usize;
    assert!(address >= start && address < start + aligned.bytes().len());
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot memory-map files")]
fn file_and_memory_open_agree() {
    let metadata = tiny_metadata(Architecture::Qwen3);
    let bytes = write_model(&metadata, &plans(&metadata, DType::F32), b"");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.tllm");
    std::fs::write(&path, &bytes).unwrap();
    let mapped = Model::open(&path).unwrap();
    let aligned = Aligned::new(&bytes);
    let in_memory = Model::from_bytes(aligned.bytes()).unwrap();
    let tokens = [3u32, 9, 27, 1, 36];
    let a = Session::new(&mapped, None).eval_all_logits(&tokens).unwrap().to_vec();
    let b = Session::new(&in_memory, None).eval_all_logits(&tokens).unwrap().to_vec();
    assert_eq!(a, b);
    assert!(a.iter().all(|v| v.is_finite()));
}

#[test]
fn pruned_layers_run_and_decode_matches_prefill() {
    // Layers of different widths; decoding token by token must give the prefill logits.
    let metadata = tiny_metadata(Architecture::Qwen2);
    assert_ne!(metadata.layers[0], metadata.layers[1]);
    let bytes = write_model(&metadata, &plans(&metadata, DType::F32), b"");
    let aligned = Aligned::new(&bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    let tokens = [5u32, 0, 36, 12, 12, 7, 30];
    let prefill = Session::new(&model, None).eval_all_logits(&tokens).unwrap().to_vec();
    let mut session = Session::new(&model, None);
    let vocab = 37;
    for (t, &token) in tokens.iter().enumerate() {
        let logits = session.eval(&[token]).unwrap();
        for (a, b) in logits.iter().zip(&prefill[t * vocab..(t + 1) * vocab]) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "position {t}: {a} vs {b}");
        }
    }
    // Truncating back to a shared prefix and continuing gives the same logits again.
    session.truncate(3);
    let logits = session.eval(&tokens[3..]).unwrap().to_vec();
    let last = &prefill[(tokens.len() - 1) * vocab..];
    for (a, b) in logits.iter().zip(last) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
    }
}
