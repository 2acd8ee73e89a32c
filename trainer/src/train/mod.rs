//! The training loop shared by supervised fine-tuning and distillation.
//!
//! One optimizer step runs `grad_accum` micro-batches of `batch_size` packed sequences. Each
//! micro-batch's loss is a sum over its target tokens divided by the target tokens of the
//! whole step, so the accumulated gradient equals that of one large batch. Gradients are
//! clipped by global norm, then AdamW updates the weights with the scheduled learning rate.
//!
//! Reproducibility: the packing follows data order and is fixed. Each epoch visits the packed
//! sequences in an order shuffled by a ChaCha8 generator seeded with `train.seed`. The same
//! seed, data and thread count give bit-identical weights, and a checkpoint stores the
//! generator position, so a resumed run continues the same order.

pub mod batch;
pub mod dataset;
mod adamw_cpu;
pub mod optimizer;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Tensor, Var};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, TrainState};
use crate::config::TrainSection;
use crate::error::{Result, TrainError};
use crate::loss::topk_cache::TopkCache;
use crate::loss::{cross_entropy_sum, distill_full_sum, distill_topk_sum, Divergence};
use crate::metrics::{self, EvalRecord};
use crate::model::vocab::VocabMap;
use crate::model::Decoder;
use batch::{make_batch, pack, Batch, Example, PackedSequence};
use optimizer::{clip_scale, AdamW, AdamWConfig};
use schedule::Schedule;

/// The teacher signal the student learns from besides the target tokens.
pub enum TeacherSignal {
    /// Supervised fine-tuning: cross-entropy only.
    None,
    /// The teacher runs on every batch; the divergence covers the full vocabulary, or the
    /// student's part of it when the student's vocabulary is pruned.
    Online {
        /// The teacher model.
        teacher: Decoder,
        /// Student-to-teacher token ids when the student keeps fewer tokens than the teacher.
        vocab: Option<VocabMap>,
    },
    /// Cached teacher top-k log-probabilities for the training and development sets.
    Topk {
        /// Cache of the training set.
        train: TopkCache,
        /// Cache of the development set.
        dev: Option<TopkCache>,
    },
}

/// The distillation term and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distillation {
    /// Divergence between teacher and student.
    pub divergence: Divergence,
    /// Softmax temperature.
    pub temperature: f64,
    /// Weight of the distillation term; `1 - alpha` weighs the cross-entropy.
    pub alpha: f64,
}

/// A training run.
pub struct Trainer {
    /// The model being trained.
    pub model: Decoder,
    /// The teacher's signal.
    pub teacher: TeacherSignal,
    /// The distillation term; ignored when `teacher` is `None`.
    pub distillation: Distillation,
    /// Training examples.
    pub train: Vec<Example>,
    /// Development examples.
    pub dev: Vec<Example>,
    /// Optimizer, schedule, batching and checkpoint settings.
    pub options: TrainSection,
    /// Tokens per packed sequence.
    pub seq_len: usize,
    /// Output folder: `checkpoints/`, `metrics.jsonl`, `loss.svg`.
    pub out_dir: PathBuf,
    /// Hide the progress bar and log lines.
    pub quiet: bool,
}

/// The result of [`Trainer::run`].
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Optimizer steps done.
    pub steps: u64,
    /// Planned optimizer steps.
    pub total_steps: u64,
    /// The step the run resumed from, when it did.
    pub resumed_from: Option<u64>,
    /// Training loss of every step.
    pub train_losses: Vec<(u64, f64)>,
    /// The last evaluation.
    pub last_eval: Option<EvalRecord>,
}

/// Sums of one micro-batch's loss terms.
struct LossTerms {
    objective: Tensor,
    ce: f64,
    distill: f64,
}

impl Trainer {
    fn checkpoint_dir(&self) -> PathBuf {
        self.out_dir.join("checkpoints")
    }

    fn run_id(&self) -> String {
        let mut hasher = crc32fast::Hasher::new();
        for example in &self.train {
            hasher.update(&example.fingerprint().to_le_bytes());
        }
        format!("{} training examples (crc {:08x}), seq_len {}, {} parameters", self.train.len(), hasher.finalize(), self.seq_len, self.model.parameter_count())
    }

    fn uses_teacher(&self) -> bool {
        !matches!(self.teacher, TeacherSignal::None)
    }

    /// Computes the loss terms of one micro-batch, each summed over its target tokens.
    fn loss_terms(&self, batch: &Batch, dev: bool) -> Result<LossTerms> {
        let logits = self.model.forward_rows(&batch.input, &batch.rows)?;
        let ce = cross_entropy_sum(&logits, &batch.targets)?;
        let d = self.distillation;
        let distill = match &self.teacher {
            TeacherSignal::None => None,
            TeacherSignal::Online { teacher, vocab } => {
                let teacher_logits = match vocab {
                    None => teacher.forward_rows(&batch.input, &batch.rows)?,
                    Some(vocab) => {
                        // The teacher reads the same tokens in its own ids, and its logits over
                        // the student's tokens are the distribution the student learns.
                        let to_teacher = vocab.teacher_ids_tensor(teacher.device())?;
                        let ids = to_teacher.index_select(&batch.input.ids.flatten_all()?, 0)?.reshape(batch.input.ids.shape())?;
                        teacher.forward_rows(&batch.input.with_ids(ids), &batch.rows)?.index_select(&to_teacher, 1)?
                    }
                };
                Some(distill_full_sum(&logits, &teacher_logits.to_dtype(logits.dtype())?, d.temperature, d.divergence)?)
            }
            TeacherSignal::Topk { train, dev: dev_cache } => {
                let cache = if dev {
                    dev_cache.as_ref().ok_or_else(|| TrainError::Incompatible { message: "no teacher top-k cache for the development set".into() })?
                } else {
                    train
                };
                let k = cache.k();
                let mut ids = Vec::with_capacity(batch.n_rows() * k);
                let mut log_probs = Vec::with_capacity(batch.n_rows() * k);
                for &(example, rank) in &batch.row_sources {
                    let (row_ids, row_log_probs) = cache.row(example, rank);
                    ids.extend_from_slice(row_ids);
                    log_probs.extend_from_slice(row_log_probs);
                }
                let device = self.model.device();
                let ids = Tensor::from_vec(ids, (batch.n_rows(), k), device)?;
                let log_probs = Tensor::from_vec(log_probs, (batch.n_rows(), k), device)?;
                Some(distill_topk_sum(&logits, &ids, &log_probs, d.temperature, d.divergence)?)
            }
        };
        let ce_value = ce.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        match distill {
            None => Ok(LossTerms { objective: ce, ce: ce_value, distill: 0.0 }),
            Some(distill) => {
                let distill_value = distill.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                let objective = ((distill * d.alpha)? + (ce * (1.0 - d.alpha))?)?;
                Ok(LossTerms { objective, ce: ce_value, distill: distill_value })
            }
        }
    }

    /// Evaluates the mean objective, cross-entropy and distillation term per target token on
    /// the development set; `None` when there is no development set.
    pub fn evaluate(&self) -> Result<Option<(f64, f64, f64)>> {
        if self.dev.is_empty() {
            return Ok(None);
        }
        let order: Vec<usize> = (0..self.dev.len()).collect();
        let sequences = pack(&order, &self.dev, self.seq_len);
        let (mut ce, mut distill, mut rows) = (0.0, 0.0, 0usize);
        for chunk in sequences.chunks(self.options.batch_size) {
            let refs: Vec<&PackedSequence> = chunk.iter().collect();
            let batch = make_batch(&refs, &self.dev, self.pad_id(), self.model.dtype(), self.model.device())?;
            if batch.n_rows() == 0 {
                continue;
            }
            let terms = self.loss_terms(&batch, true)?;
            ce += terms.ce;
            distill += terms.distill;
            rows += batch.n_rows();
        }
        let rows = rows.max(1) as f64;
        let (ce, distill) = (ce / rows, distill / rows);
        let objective = if self.uses_teacher() { self.distillation.alpha * distill + (1.0 - self.distillation.alpha) * ce } else { ce };
        Ok(Some((objective, ce, distill)))
    }

    fn pad_id(&self) -> u32 {
        self.model.metadata.pad_token_id.or(self.model.metadata.eos_token_ids.first().copied()).unwrap_or(0)
    }

    /// Trains until the planned number of steps, resuming from the newest checkpoint in
    /// `out_dir/checkpoints` when there is one. With `stop_after`, the run writes a checkpoint
    /// at that step and returns early, as if it had been stopped there.
    pub fn run(&mut self, stop_after: Option<u64>) -> Result<RunSummary> {
        let o = self.options.clone();
        std::fs::create_dir_all(&self.out_dir).map_err(|e| TrainError::io(&self.out_dir, e))?;
        let order: Vec<usize> = (0..self.train.len()).collect();
        let sequences = pack(&order, &self.train, self.seq_len);
        let per_step = o.batch_size * o.grad_accum;
        let steps_per_epoch = sequences.len().div_ceil(per_step) as u64;
        let total_steps = if o.max_steps > 0 { o.max_steps } else { o.epochs * steps_per_epoch };
        let schedule = Schedule { peak: o.lr, min: o.min_lr, warmup: o.warmup_steps, total: total_steps };
        let params: Vec<(String, Var)> = self.model.vars().map(|(n, v)| (n.clone(), v.clone())).collect();
        let shapes: BTreeMap<String, Vec<usize>> = params.iter().map(|(n, v)| (n.clone(), v.dims().to_vec())).collect();
        let adam = AdamWConfig { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weight_decay: o.weight_decay };
        let mut optimizer = AdamW::new(adam, &params)?;

        let run_id = self.run_id();
        let metrics_path = self.out_dir.join("metrics.jsonl");
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        let mut state = TrainState { step: 0, epoch: 0, next_sequence: 0, seed: o.seed, epoch_rng_word_pos: "0".into(), train_losses: Vec::new(), dev_losses: Vec::new(), run_id: run_id.clone() };
        let mut resumed_from = None;
        if let Some(dir) = checkpoint::latest(&self.checkpoint_dir())? {
            let loaded = checkpoint::load(&dir, &self.model, &mut optimizer)?;
            if loaded.run_id != run_id || loaded.seed != o.seed {
                return Err(TrainError::Checkpoint {
                    path: dir,
                    message: format!("it belongs to another run ({}, seed {}; this run has {run_id}, seed {}); use another output.dir or delete the checkpoints", loaded.run_id, loaded.seed, o.seed),
                });
            }
            metrics::truncate_after(&metrics_path, loaded.step)?;
            resumed_from = Some(loaded.step);
            state = loaded;
        } else if metrics_path.exists() {
            std::fs::remove_file(&metrics_path).map_err(|e| TrainError::io(&metrics_path, e))?;
        }
        let word_pos: u128 = state.epoch_rng_word_pos.parse().map_err(|_| TrainError::Checkpoint { path: self.checkpoint_dir(), message: format!("epoch_rng_word_pos {:?} is not a number", state.epoch_rng_word_pos) })?;
        rng.set_word_pos(word_pos);
        let mut epoch_order: Vec<usize> = (0..sequences.len()).collect();
        epoch_order.shuffle(&mut rng);

        let progress = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(total_steps) };
        progress.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed_precise} eta {eta} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        progress.set_position(state.step);
        let log = |line: &str| {
            if self.quiet {
            } else if progress.is_hidden() {
                eprintln!("{line}");
            } else {
                progress.println(line);
            }
        };
        if let Some(step) = resumed_from {
            log(&format!("resumed from checkpoint at step {step}"));
        }

        let started = Instant::now();
        let mut tokens = 0u64;
        let mut since_eval: Vec<f64> = Vec::new();
        let mut last_eval = None;
        while state.step < total_steps {
            let end = (state.next_sequence + per_step).min(sequences.len());
            let step_sequences: Vec<&PackedSequence> = epoch_order[state.next_sequence..end].iter().map(|&i| &sequences[i]).collect();
            let batches: Vec<Batch> = step_sequences
                .chunks(o.batch_size)
                .map(|chunk| make_batch(chunk, &self.train, self.pad_id(), self.model.dtype(), self.model.device()))
                .collect::<candle_core::Result<_>>()?;
            let step_rows: usize = batches.iter().map(Batch::n_rows).sum();

            let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
            let mut step_loss = 0.0;
            for batch in batches.iter().filter(|b| b.n_rows() > 0) {
                let terms = self.loss_terms(batch, false)?;
                let loss = (terms.objective / step_rows as f64)?;
                step_loss += loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                let mut store = loss.backward()?;
                for (name, var) in &params {
                    if let Some(grad) = store.remove(var.as_tensor()) {
                        let sum = match grads.remove(name) {
                            Some(previous) => (previous + grad)?,
                            None => grad,
                        };
                        grads.insert(name.clone(), sum);
                    }
                }
            }
            let (_, grad_scale) = clip_scale(&grads, o.clip_norm)?;
            let lr = schedule.lr(state.step + 1);
            optimizer.update(&params, &grads, grad_scale, lr, |name, _| crate::model::params::decays(name, &shapes[name]))?;

            state.step += 1;
            tokens += step_rows as u64;
            state.train_losses.push((state.step, step_loss));
            since_eval.push(step_loss);
            state.next_sequence = end;
            if state.next_sequence >= sequences.len() {
                state.epoch += 1;
                state.next_sequence = 0;
                state.epoch_rng_word_pos = rng.get_word_pos().to_string();
                epoch_order = (0..sequences.len()).collect();
                epoch_order.shuffle(&mut rng);
            }
            progress.set_position(state.step);
            progress.set_message(format!("loss {step_loss:.4}"));

            let last = state.step == total_steps;
            let stopping = stop_after == Some(state.step);
            if last || (o.eval_every > 0 && state.step % o.eval_every == 0) {
                let dev = self.evaluate()?;
                let record = EvalRecord {
                    step: state.step,
                    epoch: state.epoch,
                    lr,
                    train_loss: since_eval.iter().sum::<f64>() / since_eval.len().max(1) as f64,
                    dev_loss: dev.map(|d| d.0),
                    dev_ce: dev.map(|d| d.1),
                    dev_distill: dev.filter(|_| self.uses_teacher()).map(|d| d.2),
                    tokens,
                    elapsed_s: started.elapsed().as_secs_f64(),
                };
                since_eval.clear();
                log(&record.log_line(total_steps));
                metrics::append(&metrics_path, &record)?;
                if let Some(dev_loss) = record.dev_loss {
                    state.dev_losses.push((state.step, dev_loss));
                }
                metrics::plot(&self.out_dir.join("loss.svg"), &state.train_losses, &state.dev_losses)?;
                last_eval = Some(record);
            }
            if last || stopping || (o.checkpoint_every > 0 && state.step % o.checkpoint_every == 0) {
                let dir = checkpoint::save(&self.checkpoint_dir(), &self.model, &optimizer, &state, o.keep_checkpoints)?;
                log(&format!("checkpoint {}", dir.display()));
            }
            if stopping {
                break;
            }
        }
        progress.finish_and_clear();
        Ok(RunSummary { steps: state.step, total_steps, resumed_from, train_losses: state.train_losses, last_eval })
    }
}

/// Returns the path of the final Hugging Face directory of a run.
pub fn final_dir(out_dir: &Path) -> PathBuf {
    out_dir.join("final")
}
