//! Times SFT steps of SmolLM2-135M (the shared GGUF, dequantized to f32) at sequence length
//! 256 and batch 1. Ignored by default because a step takes seconds:
//! `cargo test --release -p tinyllm-train --test smollm2_step -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use candle_core::{DType, Device};
use tinyllm_train::config::TrainSection;
use tinyllm_train::model::load::load;
use tinyllm_train::train::batch::Example;
use tinyllm_train::train::{Distillation, TeacherSignal, Trainer};

#[test]
#[ignore = "takes about a minute; run with --ignored to measure"]
fn smollm2_sft_step_time() {
    let Some(shared) = common::shared_dir("smollm2_sft_step_time") else { return };
    let gguf = shared.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = load(&gguf, DType::F32, &Device::Cpu).unwrap();
    let examples: Vec<Example> = (0..4).map(|i| Example { ids: (0..256).map(|t| ((t * 31 + i * 7) % 49000) as u32 + 10).collect(), loss_mask: vec![true; 256] }).collect();
    let out = tempfile::tempdir().unwrap();
    for steps in [1u64, 4] {
        let run_dir = out.path().join(format!("run-{steps}"));
        let mut trainer = Trainer {
            model: load(&gguf, DType::F32, &Device::Cpu).unwrap(),
            teacher: TeacherSignal::None,
            distillation: Distillation { divergence: tinyllm_train::loss::Divergence::ForwardKl, temperature: 1.0, alpha: 0.0 },
            train: examples.clone(),
            dev: Vec::new(),
            options: TrainSection { max_steps: steps, batch_size: 1, grad_accum: 1, lr: 1e-5, eval_every: 0, checkpoint_every: 0, ..TrainSection::default() },
            seq_len: 256,
            out_dir: run_dir,
            quiet: true,
        };
        let started = Instant::now();
        trainer.run(None).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("SmolLM2-135M, {} parameters: {steps} SFT step(s) at seq 256, batch 1, with one checkpoint: {seconds:.2} s", model.parameter_count());
    }
}
