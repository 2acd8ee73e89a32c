//! The `eval` command: generate replies for a JSONL data set with a `.tllm` model and write a
//! JSON report of the metrics and per-example results.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::generate::{GenerateOptions, Generator};
use super::report::{build_report, evaluate, EvalReport};
use crate::data::jsonl::{read_conversations, write_json};

/// Arguments of `tinyllm-train eval`. Flags override the values of the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EvalArgs {
    /// TOML file with the settings (see trainer/configs/eval.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The `.tllm` model to evaluate.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// JSONL data set in the chat format; the final assistant message of each line is the
    /// expected reply.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluate only the first N examples.
    #[arg(long)]
    pub max_examples: Option<usize>,
    /// Max tokens generated per reply.
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Path of the JSON report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Context length in tokens.
    #[arg(long)]
    pub context: Option<usize>,
    /// Threads of the matrix products (default: one per physical core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The settings of an evaluation, as read from the config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// The `.tllm` model; a relative path is relative to the config file.
    pub model: Option<PathBuf>,
    /// The JSONL data set; a relative path is relative to the config file.
    pub data: Option<PathBuf>,
    /// Evaluate only the first N examples.
    pub max_examples: Option<usize>,
    /// Max tokens generated per reply (default 256).
    pub max_new_tokens: Option<usize>,
    /// Path of the JSON report; a relative path is relative to the config file.
    pub report: Option<PathBuf>,
    /// Context length in tokens.
    pub context: Option<usize>,
    /// Threads of the matrix products.
    pub threads: Option<usize>,
}

/// Default max new tokens per reply.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;

impl EvalConfig {
    /// Reads a config file; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> anyhow::Result<EvalConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the eval config {}", path.display()))?;
        let mut config: EvalConfig =
            toml::from_str(&text).with_context(|| format!("invalid eval config {}; see trainer/configs/eval.toml for the keys", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for field in [&mut config.model, &mut config.data, &mut config.report] {
            if let Some(value) = field.as_mut() {
                if value.is_relative() {
                    *value = base.join(&*value);
                }
            }
        }
        Ok(config)
    }

    /// Applies the flags that are set on top of this config.
    pub fn merge(mut self, args: &EvalArgs) -> EvalConfig {
        self.model = args.model.clone().or(self.model);
        self.data = args.data.clone().or(self.data);
        self.max_examples = args.max_examples.or(self.max_examples);
        self.max_new_tokens = args.max_new_tokens.or(self.max_new_tokens);
        self.report = args.report.clone().or(self.report);
        self.context = args.context.or(self.context);
        self.threads = args.threads.or(self.threads);
        self
    }
}

/// Runs an evaluation with `config` and writes the report when a path is set.
pub fn run_config(config: &EvalConfig) -> anyhow::Result<EvalReport> {
    let model_path = config.model.as_ref().context("no model given; set `model` in the config or pass --model")?;
    let data_path = config.data.as_ref().context("no data given; set `data` in the config or pass --data")?;
    let mut conversations = read_conversations(data_path)?;
    if let Some(limit) = config.max_examples {
        conversations.truncate(limit);
    }
    let model = tinyllm::Model::open(model_path).with_context(|| format!("cannot open the model {}", model_path.display()))?;
    let max_new_tokens = config.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
    let options = GenerateOptions { max_new_tokens, context: config.context, threads: config.threads };
    let mut generator = Generator::new(&model, options)?;
    let progress = indicatif::ProgressBar::new(conversations.len() as u64);
    let results = evaluate(&mut generator, &conversations, |_, _| progress.inc(1));
    progress.finish_and_clear();
    let report = build_report(model_path.display().to_string(), data_path.display().to_string(), max_new_tokens, results);
    if let Some(path) = &config.report {
        write_json(path, &report)?;
    }
    Ok(report)
}

/// Runs `tinyllm-train eval`: prints the metrics and writes the report.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => EvalConfig::load(path)?,
        None => EvalConfig::default(),
    }
    .merge(args);
    let report = run_config(&config)?;
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"metrics": report.metrics, "bfcl": report.bfcl}))?);
    if let Some(path) = &config.report {
        println!("report written to {}", path.display());
    }
    Ok(())
}
