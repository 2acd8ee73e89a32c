//! Compares candidate students cut from one teacher before any training: for each candidate
//! (kept layers and feed-forward channels), its parameter count and its cross-entropy on the
//! target tokens of a dev set. The candidate that loses least is the best start for
//! distillation at its size.
//!
//! ```sh
//! cargo run --release -p tinyllm-train --example student_probe -- \
//!     runs/snips-teacher/final data/snips/dev-sub40.jsonl 1024 \
//!     "0-7,22-29:832" "0-14:768" "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28:768"
//! ```
//!
//! Arguments: the teacher (a Hugging Face directory or GGUF file), chat JSONL, the sequence
//! length, then candidates as `LAYERS:FFN`, where LAYERS lists teacher layers and ranges
//! (`0-7,22-29`) and FFN is the channels kept per layer (by weight magnitude). With
//! `--vocabulary-from TRAIN.jsonl` first, each candidate also keeps only the tokens of the
//! training and dev data, as `student.vocabulary = "data"` does in `tinyllm-train distill`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use tinyllm_train::config::{DataFormat, TrainSection};
use tinyllm_train::loss::Divergence;
use tinyllm_train::model::load::load;
use tinyllm_train::model::student::{student_from_teacher, ChannelRule};
use tinyllm_train::model::vocab::{data_vocabulary, prune_to};
use tinyllm_train::train::batch::Example;
use tinyllm_train::train::dataset::read_examples;
use tinyllm_train::train::{Distillation, TeacherSignal, Trainer};

fn parse_layers(spec: &str) -> Result<Vec<usize>, String> {
    let mut layers = Vec::new();
    for part in spec.split(',') {
        let bad = || format!("layer list {spec:?}: {part:?} is not a layer or a range such as 0-7");
        match part.split_once('-') {
            Some((a, b)) => layers.extend(a.parse::<usize>().map_err(|_| bad())?..=b.parse::<usize>().map_err(|_| bad())?),
            None => layers.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(layers)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let vocabulary_from = match args.first().map(String::as_str) {
        Some("--vocabulary-from") if args.len() > 1 => Some(PathBuf::from(args.drain(..2).nth(1).unwrap_or_default())),
        _ => None,
    };
    let [teacher_path, dev_path, seq_len, candidates @ ..] = args.as_slice() else {
        return Err("usage: student_probe [--vocabulary-from TRAIN.jsonl] TEACHER DEV.jsonl SEQ_LEN LAYERS:FFN...".into());
    };
    let seq_len: usize = seq_len.parse().map_err(|_| format!("sequence length {seq_len:?} is not a number"))?;
    let teacher = load(Path::new(teacher_path), DType::F32, &Device::Cpu)?;
    let dev = read_examples(Path::new(dev_path), DataFormat::Chat, seq_len, &teacher.metadata, teacher.tokenizer_json.as_deref())?;
    let vocabulary = match &vocabulary_from {
        Some(path) => {
            let train = read_examples(path, DataFormat::Chat, seq_len, &teacher.metadata, teacher.tokenizer_json.as_deref())?;
            let map = data_vocabulary(&teacher, &[&train, &dev])?;
            println!("vocabulary: {} of the teacher's {} tokens", map.len(), map.teacher_vocab());
            Some(map)
        }
        None => None,
    };
    let student_dev: Vec<Example> = match &vocabulary {
        Some(map) => dev.iter().map(|e| map.to_student(e).map_err(|id| format!("dev token {id} is not kept"))).collect::<Result<_, _>>()?,
        None => dev.clone(),
    };
    let cross_entropy = |model, dev: &[Example]| -> Result<f64, Box<dyn std::error::Error>> {
        let trainer = Trainer {
            model,
            teacher: TeacherSignal::None,
            distillation: Distillation { divergence: Divergence::ForwardKl, temperature: 1.0, alpha: 0.0 },
            train: Vec::new(),
            dev: dev.to_vec(),
            options: TrainSection { batch_size: 1, ..TrainSection::default() },
            seq_len,
            out_dir: PathBuf::new(),
            quiet: true,
        };
        Ok(trainer.evaluate()?.map_or(f64::NAN, |(_, ce, _)| ce))
    };
    let teacher_params = teacher.parameter_count();
    println!("{:<48} {:>12} {:>8} {:>10}", "candidate", "parameters", "share", "dev CE");
    for candidate in candidates {
        let (layers, ffn) = candidate.split_once(':').ok_or_else(|| format!("candidate {candidate:?} is not LAYERS:FFN"))?;
        let layers = parse_layers(layers)?;
        let ffn: usize = ffn.parse().map_err(|_| format!("candidate {candidate:?}: {ffn:?} is not a channel count"))?;
        let mut student = student_from_teacher(&teacher, &layers, Some(ffn), ChannelRule::Magnitude)?;
        if let Some(map) = &vocabulary {
            student = prune_to(&student, map)?;
        }
        let params = student.parameter_count();
        let ce = cross_entropy(student, &student_dev)?;
        println!("{candidate:<48} {params:>12} {:>7.1}% {ce:>10.4}", params as f64 * 100.0 / teacher_params as f64);
    }
    let ce = cross_entropy(teacher, &dev)?;
    println!("{:<48} {teacher_params:>12} {:>7.1}% {ce:>10.4}", "teacher", 100.0);
    Ok(())
}
