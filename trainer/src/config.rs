//! The run configuration: one TOML file per run. trainer/configs/ documents every key.
//! Relative paths are resolved against the folder of the TOML file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, TrainError};
use crate::loss::topk_cache::ValueType;
use crate::loss::Divergence;
use crate::model::student::ChannelRule;

/// A whole run configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The model to fine-tune (`sft`).
    pub model: Option<ModelSection>,
    /// The teacher (`distill` and `topk`).
    pub teacher: Option<ModelSection>,
    /// Student construction (`distill`).
    pub student: Option<StudentSection>,
    /// Training and development data.
    pub data: DataSection,
    /// Optimizer, schedule, batching, evaluation and checkpoints.
    #[serde(default)]
    pub train: TrainSection,
    /// Distillation objective (`distill`).
    #[serde(default)]
    pub distill: DistillSection,
    /// Output folder.
    pub output: OutputSection,
}

/// A model file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A Hugging Face model directory or a GGUF file.
    pub path: PathBuf,
}

/// Student construction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudentInit {
    /// Load the student from `student.path`.
    Load,
    /// Build it from the teacher's weights with [`crate::model::student::student_from_teacher`].
    FromTeacher,
}

/// The `[student]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSection {
    /// `load` or `from_teacher`.
    pub init: StudentInit,
    /// The student model, for `init = "load"`.
    pub path: Option<PathBuf>,
    /// Teacher layers to keep, for `init = "from_teacher"`; all layers when absent.
    pub layers: Option<Vec<usize>>,
    /// Feed-forward channels per layer, for `init = "from_teacher"`; the teacher's when absent.
    pub ffn_dim: Option<usize>,
    /// Rule that chooses the kept channels.
    #[serde(default = "default_channel_rule")]
    pub channel_rule: ChannelRule,
    /// Tokens the student keeps: all of the teacher's, or those the training and dev data use.
    /// The second adds the tokens the tokenizer needs to encode any text ([`crate::model::vocab`]).
    #[serde(default)]
    pub vocabulary: VocabularyChoice,
}

/// The `student.vocabulary` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabularyChoice {
    /// The teacher's whole vocabulary.
    #[default]
    Full,
    /// The tokens of the training and dev data, the byte alphabet, the special tokens and the
    /// merge parts they need.
    Data,
}

fn default_channel_rule() -> ChannelRule {
    ChannelRule::Magnitude
}

/// Format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// JSON lines `{"ids": [...], "loss_mask": [...]}` with one 0/1 or boolean per token.
    Tokenized,
    /// Plain text, tokenized with the model's tokenizer and cut into examples of `seq_len`
    /// tokens, every token a target.
    Text,
    /// Chat JSONL (messages, tools, tool calls), rendered with the model's chat template and
    /// tokenized with its tokenizer; the assistant turns are the targets.
    Chat,
}

/// The `[data]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training data file.
    pub train: PathBuf,
    /// Development data file, evaluated every `train.eval_every` steps.
    pub dev: Option<PathBuf>,
    /// Format of both files.
    #[serde(default = "default_format")]
    pub format: DataFormat,
    /// Tokens per packed sequence; longer examples are cut to this length.
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
}

fn default_format() -> DataFormat {
    DataFormat::Tokenized
}

fn default_seq_len() -> usize {
    512
}

/// The `[train]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Seed of the data order.
    pub seed: u64,
    /// Passes over the training data.
    pub epochs: u64,
    /// Stop after this many optimizer steps; 0 lets `epochs` decide.
    pub max_steps: u64,
    /// Packed sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the last step.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Decoupled weight decay on matrices.
    pub weight_decay: f64,
    /// AdamW β1.
    pub beta1: f64,
    /// AdamW β2.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Maximum global gradient norm; 0 disables clipping.
    pub clip_norm: f64,
    /// Evaluate on the development set every this many steps (and at the end); 0 only at the end.
    pub eval_every: u64,
    /// Write a checkpoint every this many steps (and at the end); 0 only at the end.
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk; older ones are deleted.
    pub keep_checkpoints: usize,
}

impl Default for TrainSection {
    fn default() -> TrainSection {
        TrainSection {
            seed: 0,
            epochs: 1,
            max_steps: 0,
            batch_size: 4,
            grad_accum: 1,
            lr: 1e-4,
            min_lr: 1e-5,
            warmup_steps: 0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            clip_norm: 1.0,
            eval_every: 100,
            checkpoint_every: 100,
            keep_checkpoints: 2,
        }
    }
}

/// The `[distill]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillSection {
    /// `forward_kl`, `reverse_kl` or `jsd`.
    pub divergence: Divergence,
    /// Softmax temperature of both models in the distillation term.
    pub temperature: f64,
    /// Weight of the distillation term; `1 - alpha` weighs the cross-entropy on the targets.
    pub alpha: f64,
    /// Teacher tokens kept per position; 0 compares the full vocabulary with the teacher run
    /// at every step.
    pub top_k: usize,
    /// Storage type of the cached log-probabilities.
    pub cache_dtype: ValueType,
    /// Folder of the top-k cache files; `<output.dir>/teacher-topk` when absent.
    pub cache_dir: Option<PathBuf>,
}

impl Default for DistillSection {
    fn default() -> DistillSection {
        DistillSection { divergence: Divergence::ForwardKl, temperature: 1.0, alpha: 1.0, top_k: 64, cache_dtype: ValueType::F16, cache_dir: None }
    }
}

/// The `[output]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Folder of checkpoints, metrics, the loss plot and the final model.
    pub dir: PathBuf,
    /// Whether to write `model.tllm` beside the final Hugging Face directory.
    #[serde(default = "default_true")]
    pub tllm: bool,
}

fn default_true() -> bool {
    true
}

impl RunConfig {
    /// Reads and checks a TOML file, resolving relative paths against its folder.
    pub fn read(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut config: RunConfig = toml::from_str(&text).map_err(|e| TrainError::config(path, e.to_string().trim_end().replace('\n', " ")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate(path)?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for section in [self.model.as_mut(), self.teacher.as_mut()].into_iter().flatten() {
            resolve(&mut section.path);
        }
        if let Some(student) = self.student.as_mut() {
            if let Some(p) = student.path.as_mut() {
                resolve(p);
            }
        }
        resolve(&mut self.data.train);
        if let Some(p) = self.data.dev.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.distill.cache_dir.as_mut() {
            resolve(p);
        }
        resolve(&mut self.output.dir);
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let t = &self.train;
        let fail = |key: &str, value: String, expected: &str| Err(TrainError::config(path, format!("{key} = {value} is invalid: expected {expected}")));
        if self.data.seq_len < 2 {
            return fail("data.seq_len", self.data.seq_len.to_string(), "at least 2");
        }
        if t.batch_size == 0 {
            return fail("train.batch_size", "0".into(), "at least 1");
        }
        if t.grad_accum == 0 {
            return fail("train.grad_accum", "0".into(), "at least 1");
        }
        if t.epochs == 0 && t.max_steps == 0 {
            return fail("train.epochs", "0".into(), "at least 1, or a positive train.max_steps");
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return fail("train.lr", t.lr.to_string(), "a positive number");
        }
        if !(t.min_lr.is_finite() && t.min_lr >= 0.0 && t.min_lr <= t.lr) {
            return fail("train.min_lr", t.min_lr.to_string(), "between 0 and train.lr");
        }
        if !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2) {
            return fail("train.beta1/beta2", format!("{}/{}", t.beta1, t.beta2), "values in [0, 1)");
        }
        if !(t.eps > 0.0) || !(t.weight_decay >= 0.0) || !(t.clip_norm >= 0.0) {
            return fail("train.eps/weight_decay/clip_norm", format!("{}/{}/{}", t.eps, t.weight_decay, t.clip_norm), "eps > 0, weight_decay >= 0, clip_norm >= 0");
        }
        if t.keep_checkpoints == 0 {
            return fail("train.keep_checkpoints", "0".into(), "at least 1 (resuming needs the latest checkpoint)");
        }
        let d = &self.distill;
        if !(d.temperature.is_finite() && d.temperature > 0.0) {
            return fail("distill.temperature", d.temperature.to_string(), "a positive number");
        }
        if !(0.0..=1.0).contains(&d.alpha) {
            return fail("distill.alpha", d.alpha.to_string(), "a weight between 0 and 1");
        }
        Ok(())
    }

    /// Returns the teacher path, or an error naming the missing key.
    pub fn teacher_path(&self, path: &Path) -> Result<&Path> {
        self.teacher.as_ref().map(|t| t.path.as_path()).ok_or_else(|| TrainError::config(path, "[teacher] path is missing; distill and topk need the teacher model"))
    }

    /// Returns the folder of the top-k cache files.
    pub fn cache_dir(&self) -> PathBuf {
        self.distill.cache_dir.clone().unwrap_or_else(|| self.output.dir.join("teacher-topk"))
    }
}
