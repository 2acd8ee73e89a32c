//! Vocabulary pruning. The pruned tokenizer splits the kept text exactly as the full one did and
//! still encodes any text. The pruned model's logits are the full model's on the kept tokens,
//! and distillation from the full model into its pruned copy has zero divergence.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::{micro_model, shared_dir};
use serde_json::json;
use tinyllm::format::Architecture;
use tinyllm_train::config::TrainSection;
use tinyllm_train::loss::topk_cache::{TopkCache, ValueType};
use tinyllm_train::loss::Divergence;
use tinyllm_train::model::vocab::{closed_keep_set, prune_tokenizer_json, prune_vocabulary, VocabMap};
use tinyllm_train::train::batch::Example;
use tinyllm_train::train::{Distillation, TeacherSignal, Trainer};
use tinyllm_train::{Decoder, ModelInput};

/// Builds a BPE tokenizer of 32 tokens for the micro model: two added tokens, the letters a to
/// l (ids 2 to 13) and 18 merges (ids 14 to 31).
fn micro_tokenizer() -> Vec<u8> {
    let merges: [(&str, &str); 18] = [
        ("a", "b"),
        ("ab", "c"),
        ("d", "e"),
        ("de", "f"),
        ("g", "h"),
        ("i", "j"),
        ("k", "l"),
        ("ab", "de"),
        ("gh", "ij"),
        ("abc", "def"),
        ("a", "a"),
        ("b", "b"),
        ("c", "c"),
        ("kl", "kl"),
        ("aa", "bb"),
        ("e", "f"),
        ("j", "k"),
        ("h", "i"),
    ];
    let mut vocab = serde_json::Map::new();
    vocab.insert("<pad>".into(), json!(0));
    vocab.insert("<eos>".into(), json!(1));
    for (i, letter) in ('a'..='l').enumerate() {
        vocab.insert(letter.to_string(), json!(2 + i));
    }
    for (i, (a, b)) in merges.iter().enumerate() {
        vocab.insert(format!("{a}{b}"), json!(14 + i));
    }
    let added = |id: u32, content: &str| json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [added(0, "<pad>"), added(1, "<eos>")],
        "normalizer": null,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab,
                  "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()},
    });
    serde_json::to_vec(&tokenizer).unwrap()
}

fn micro_teacher() -> Decoder {
    let mut model = micro_model(Architecture::Llama, 3, DType::F32);
    model.tokenizer_json = Some(micro_tokenizer());
    model
}

fn encode(json: &[u8], text: &str) -> Vec<u32> {
    let tokenizer = tokenizers::Tokenizer::from_bytes(json).unwrap();
    tokenizer.encode(text, false).unwrap().get_ids().to_vec()
}

#[test]
fn keep_set_is_closed_under_merges() {
    // "abc" (15) needs "ab" (14) and "c"; "ab" needs "a" and "b". Letters and added tokens
    // are always kept.
    let kept = closed_keep_set(&micro_tokenizer(), &BTreeSet::from([15]), &[]).unwrap();
    assert_eq!(kept, (0..=15).collect::<BTreeSet<u32>>());
    // "abcdef" (23) needs "abc" and "def" (17), which need "ab" and "de" (16).
    let kept = closed_keep_set(&micro_tokenizer(), &BTreeSet::from([23]), &[]).unwrap();
    assert_eq!(kept, (0..=17).chain([23]).collect::<BTreeSet<u32>>());
}

#[test]
fn pruned_micro_model_keeps_logits_and_splits() {
    let teacher = micro_teacher();
    let (student, map) = prune_vocabulary(&teacher, &BTreeSet::from([15, 18])).unwrap();
    // Kept: 0 to 15 and "gh" (18).
    assert_eq!(map.teacher_ids(), (0..=15).chain([18]).collect::<Vec<u32>>().as_slice());
    assert_eq!(student.metadata.vocab_size, 17);
    assert_eq!(teacher.parameter_count() - student.parameter_count(), 15 * 16, "15 embedding rows of 16 go");
    assert_eq!(student.metadata.eos_token_ids, vec![1]);
    assert_eq!(student.metadata.pad_token_id, Some(0));

    // The kept text is split as before; other text falls back to kept pieces.
    let pruned_json = student.tokenizer_json.clone().unwrap();
    let full_json = micro_tokenizer();
    for text in ["abcab", "ghabc", "cbaghg"] {
        let student_ids: Vec<u32> = encode(&pruned_json, text).iter().map(|&id| map.teacher_ids()[id as usize]).collect();
        assert_eq!(student_ids, encode(&full_json, text), "{text}");
    }
    let fallback = encode(&pruned_json, "abcdef");
    assert_eq!(fallback.iter().map(|&id| map.teacher_ids()[id as usize]).collect::<Vec<_>>(), vec![15, 5, 6, 7], "abc d e f");
    assert_eq!(encode(&full_json, "abcdef"), vec![23]);

    // Same weights on the kept tokens: the student's logits are the teacher's kept columns.
    let teacher_ids = [2u32, 14, 15, 3, 18, 4, 1];
    let student_ids: Vec<u32> = teacher_ids.iter().map(|&id| map.student_id(id).unwrap()).collect();
    let teacher_logits = teacher.forward(&ModelInput::single(&teacher_ids, DType::F32, &Device::Cpu).unwrap()).unwrap();
    let columns = map.teacher_ids_tensor(&Device::Cpu).unwrap();
    let expected = teacher_logits.index_select(&columns, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let got = student.forward(&ModelInput::single(&student_ids, DType::F32, &Device::Cpu).unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (worst, _) = common::max_abs_diff(&got, &expected);
    assert!(worst < 1e-5, "logits differ by {worst}");
}

#[test]
fn pruning_refuses_a_non_bpe_tokenizer() {
    let mut tokenizer: serde_json::Value = serde_json::from_slice(&micro_tokenizer()).unwrap();
    tokenizer["model"]["type"] = json!("WordPiece");
    let error = closed_keep_set(&serde_json::to_vec(&tokenizer).unwrap(), &BTreeSet::new(), &[]).unwrap_err().to_string();
    assert!(error.contains("WordPiece"), "{error}");
    assert!(error.contains("BPE"), "{error}");
}

/// Examples over tokens the pruned vocabulary keeps, in teacher ids.
fn kept_examples(n: usize) -> Vec<Example> {
    let pool = [2u32, 14, 15, 3, 18, 4, 5, 9, 13, 1];
    (0..n)
        .map(|i| {
            let ids: Vec<u32> = (0..10).map(|t| pool[(i * 3 + t * 7) % pool.len()]).collect();
            Example { loss_mask: (0..10).map(|t| t >= 3).collect(), ids }
        })
        .collect()
}

fn trainer(student: Decoder, teacher: TeacherSignal, dev: Vec<Example>, out: &Path) -> Trainer {
    Trainer {
        model: student,
        teacher,
        distillation: Distillation { divergence: Divergence::ForwardKl, temperature: 1.0, alpha: 1.0 },
        train: dev.clone(),
        dev,
        options: TrainSection { max_steps: 1, batch_size: 2, ..TrainSection::default() },
        seq_len: 24,
        out_dir: out.to_path_buf(),
        quiet: true,
    }
}

#[test]
fn pruned_copy_divergence_is_zero() {
    let teacher = micro_teacher();
    let examples = kept_examples(6);
    let used: BTreeSet<u32> = examples.iter().flat_map(|e| e.ids.iter().copied()).collect();
    let (_, map) = prune_vocabulary(&teacher, &used).unwrap();
    let student = || prune_vocabulary(&teacher, &used).unwrap().0;
    assert!(map.len() < 32, "nothing was pruned");
    let student_examples: Vec<Example> = examples.iter().map(|e| map.to_student(e).unwrap()).collect();
    let out = tempfile::tempdir().unwrap();

    let online = trainer(student(), TeacherSignal::Online { teacher: micro_teacher(), vocab: Some(map.clone()) }, student_examples.clone(), out.path());
    let (_, ce, kl) = online.evaluate().unwrap().unwrap();
    assert!(ce > 0.1, "cross-entropy {ce} should not vanish");
    assert!(kl.abs() < 1e-5, "online forward KL {kl} between a model and its pruned copy");

    // The top-k cache over the student's tokens, in student ids, gives the same.
    let cache = TopkCache::build_for(&teacher, Some(&map), &examples, 4, ValueType::F32, |_| {}).unwrap();
    let topk = trainer(student(), TeacherSignal::Topk { train: cache.clone(), dev: Some(cache) }, student_examples.clone(), out.path());
    let (_, _, kl) = topk.evaluate().unwrap().unwrap();
    assert!(kl.abs() < 1e-5, "top-k forward KL {kl} between a model and its pruned copy");

    // A perturbed student has a positive divergence, so the zero above is a measurement.
    let other = student();
    let embedding = other.var("token_embd").unwrap();
    embedding.set(&(embedding.as_tensor() * 1.5).unwrap()).unwrap();
    let perturbed = trainer(other, TeacherSignal::Online { teacher: micro_teacher(), vocab: Some(map) }, student_examples, out.path());
    let (_, _, kl) = perturbed.evaluate().unwrap().unwrap();
    assert!(kl > 1e-3, "forward KL {kl} of a perturbed student");
}

#[test]
fn real_tokenizer_prunes_to_the_data() {
    let Some(shared) = shared_dir("real_tokenizer_prunes_to_the_data") else { return };
    let full = std::fs::read(shared.join("tokenizers/qwen3/tokenizer.json")).unwrap();
    let seen = [
        "Add another song to the Cita Romántica playlist.",
        "book a table for 3 people at a pub in Paris tomorrow",
        "what is the weather going to be like in Oslo on 12/24?",
        "<|im_start|>user\nplay some jazz from 1968<|im_end|>\n",
    ];
    let tokenizer = tokenizers::Tokenizer::from_bytes(&full).unwrap();
    let vocab = tokenizer.get_vocab_size(true);
    let used: BTreeSet<u32> = seen.iter().flat_map(|text| encode(&full, text)).collect();
    let kept = closed_keep_set(&full, &used, &[]).unwrap();
    let map = VocabMap::new(&kept, vocab).unwrap();
    eprintln!("kept {} of {vocab} tokens for {} used", map.len(), used.len());
    assert!(map.len() < vocab / 20, "kept {} of {vocab}", map.len());
    let pruned = prune_tokenizer_json(&full, &map).unwrap();
    for text in seen {
        let ids: Vec<u32> = encode(&pruned, text).iter().map(|&id| map.teacher_ids()[id as usize]).collect();
        assert_eq!(ids, encode(&full, text), "{text:?} is split differently");
    }
    let unseen = "Rate this novel five stars — naïve señor, 東京 🍕";
    let ids = encode(&pruned, unseen);
    assert!(ids.len() >= encode(&full, unseen).len());
    let pruned_tokenizer = tokenizers::Tokenizer::from_bytes(&pruned).unwrap();
    assert_eq!(pruned_tokenizer.decode(&ids, false).unwrap(), unseen);
    assert_eq!(pruned_tokenizer.get_vocab_size(true), map.len());
}

#[test]
fn pruned_tensor_input_maps_back() {
    let kept = BTreeSet::from([0u32, 2, 5]);
    let map = VocabMap::new(&kept, 8).unwrap();
    assert_eq!(map.student_id(5), Some(2));
    assert_eq!(map.student_id(3), None);
    let example = Example { ids: vec![5, 0, 2], loss_mask: vec![false, true, true] };
    assert_eq!(map.to_student(&example).unwrap().ids, vec![2, 0, 1]);
    assert_eq!(map.to_student(&Example { ids: vec![5, 3], loss_mask: vec![false, true] }).unwrap_err(), 3);
    let back = map.teacher_ids_tensor(&Device::Cpu).unwrap().index_select(&Tensor::new(&[2u32, 0, 1], &Device::Cpu).unwrap(), 0).unwrap();
    assert_eq!(back.to_vec1::<u32>().unwrap(), vec![5, 0, 2]);
    assert!(VocabMap::new(&BTreeSet::from([9]), 8).is_err());
}
