//! The `data` command: import SNIPS or BFCL into train.jsonl and dev.jsonl.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::bfcl::{self, BfclOptions};
use super::chat::Conversation;
use super::error::{DataError, Result};
use super::jsonl::{write_conversations, write_json};
use super::snips::{self, SlotDescriptions, SnipsOptions, ToolChoice};
use super::split::split_train_dev;

/// Arguments of `tinyllm-train data`.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The data set to import.
    #[command(subcommand)]
    pub source: DataSource,
}

/// The importers.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DataSource {
    /// Import SNIPS: each utterance becomes a call of its intent's function with the slots as
    /// arguments. Writes train.jsonl, dev.jsonl, tools.json and summary.json.
    Snips(SnipsArgs),
    /// Import BFCL v4 questions with their accepted answers. Writes train.jsonl, dev.jsonl
    /// and summary.json.
    Bfcl(BfclArgs),
}

/// Options shared by the importers.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output directory; created when missing.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of examples in dev.jsonl, chosen by a hash of the user text (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub dev_fraction: f64,
}

/// Arguments of `data snips`.
#[derive(Debug, Clone, clap::Args)]
pub struct SnipsArgs {
    /// Directory with the train_<Intent>_full.json files.
    #[arg(long)]
    pub input: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Keep at most N utterances per intent (the schemas still come from all of them).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Functions offered in each conversation: every intent's, only the utterance's own, its
    /// own among --candidates functions chosen by a hash of the utterance, or none (the model
    /// learns the fixed set of functions from the calls).
    #[arg(long, value_enum, default_value_t = ToolChoice::All)]
    pub tools: ToolChoice,
    /// Functions offered with --tools candidates, the right one included.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub candidates: u64,
    /// Parameter descriptions: the slot name in words with its three most frequent values,
    /// the name only, or none. The schemas are in every prompt, so shorter descriptions give
    /// shorter prompts.
    #[arg(long, value_enum, default_value_t = SlotDescriptions::Examples)]
    pub slot_descriptions: SlotDescriptions,
}

/// Arguments of `data bfcl`.
#[derive(Debug, Clone, clap::Args)]
pub struct BfclArgs {
    /// Directory with BFCL_v4_<category>.json and possible_answer/.
    #[arg(long)]
    pub input: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Keep at most N questions per category.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Categories to import, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "simple_python,multiple,parallel,parallel_multiple,irrelevance")]
    pub categories: Vec<String>,
}

/// The contents of summary.json.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    /// `snips` or `bfcl`.
    pub source: String,
    /// The input directory.
    pub input: PathBuf,
    /// The dev fraction used.
    pub dev_fraction: f64,
    /// Examples in train.jsonl.
    pub train: usize,
    /// Examples in dev.jsonl.
    pub dev: usize,
    /// Importer-specific counts: per intent for SNIPS, per category for BFCL.
    pub details: serde_json::Value,
}

/// Runs `tinyllm-train data`.
pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    let summary = match &args.source {
        DataSource::Snips(snips_args) => run_snips(snips_args)?,
        DataSource::Bfcl(bfcl_args) => run_bfcl(bfcl_args)?,
    };
    println!("{}: {} train and {} dev examples", summary.source, summary.train, summary.dev);
    Ok(())
}

fn prepare_output(output: &OutputArgs) -> Result<()> {
    super::split::check_dev_fraction(output.dev_fraction)?;
    std::fs::create_dir_all(&output.out).map_err(|source| DataError::Write { path: output.out.clone(), source })
}

fn write_splits(out: &Path, conversations: Vec<Conversation>, dev_fraction: f64) -> Result<(usize, usize)> {
    if conversations.is_empty() {
        return Err(DataError::Invalid("the import produced no examples; check --input and --limit".into()));
    }
    let (train, dev) = split_train_dev(conversations, dev_fraction)?;
    write_conversations(&out.join("train.jsonl"), &train)?;
    write_conversations(&out.join("dev.jsonl"), &dev)?;
    Ok((train.len(), dev.len()))
}

/// Imports SNIPS as `data snips` does and returns the summary it writes.
pub fn run_snips(args: &SnipsArgs) -> Result<ImportSummary> {
    prepare_output(&args.output)?;
    let options = SnipsOptions { limit_per_intent: args.limit, tools: args.tools, candidates: args.candidates as usize, slot_descriptions: args.slot_descriptions };
    let import = snips::import_dir(&args.input, &options)?;
    write_json(&args.output.out.join("tools.json"), &import.functions.iter().cloned().map(super::chat::Tool::from).collect::<Vec<_>>())?;
    let (train, dev) = write_splits(&args.output.out, import.conversations, args.output.dev_fraction)?;
    let details = serde_json::json!({
        "required_share": snips::REQUIRED_SHARE,
        "tools": args.tools,
        "candidates": args.candidates,
        "slot_descriptions": args.slot_descriptions,
        "intents": import.intents,
    });
    let summary = ImportSummary { source: "snips".into(), input: args.input.clone(), dev_fraction: args.output.dev_fraction, train, dev, details };
    write_json(&args.output.out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// Imports BFCL as `data bfcl` does and returns the summary it writes.
pub fn run_bfcl(args: &BfclArgs) -> Result<ImportSummary> {
    prepare_output(&args.output)?;
    let options = BfclOptions { categories: args.categories.clone(), limit_per_category: args.limit };
    let import = bfcl::import_dir(&args.input, &options)?;
    let mut dev_counts: BTreeMap<String, usize> = BTreeMap::new();
    for conversation in &import.conversations {
        if super::split::is_dev(&conversation.user_text(), args.output.dev_fraction) {
            let category = conversation.bfcl.as_ref().map(|r| r.category.clone()).unwrap_or_default();
            *dev_counts.entry(category).or_default() += 1;
        }
    }
    let (train, dev) = write_splits(&args.output.out, import.conversations, args.output.dev_fraction)?;
    let details = serde_json::json!({"questions": import.counts, "dev_questions": dev_counts});
    let summary = ImportSummary { source: "bfcl".into(), input: args.input.clone(), dev_fraction: args.output.dev_fraction, train, dev, details };
    write_json(&args.output.out.join("summary.json"), &summary)?;
    Ok(summary)
}
