//! `tinyllm-train`: function-call data import, supervised fine-tuning, logit distillation and
//! evaluation of tinyllm models.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tinyllm_train::data::cli::DataArgs;
use tinyllm_train::eval::cli::EvalArgs;

#[derive(Parser)]
#[command(name = "tinyllm-train", version, about = "Fine-tune and distill Llama, Qwen2 and Qwen3 models for tinyllm")]
struct Cli {
    /// Hide progress bars and log lines.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Supervised fine-tuning with cross-entropy on the target (assistant) tokens.
    Sft {
        /// Run configuration (TOML); trainer/configs/sft.toml documents every key.
        #[arg(long)]
        config: PathBuf,
    },
    /// Logit distillation from a teacher into a student.
    Distill {
        /// Run configuration (TOML); trainer/configs/distill.toml documents every key.
        #[arg(long)]
        config: PathBuf,
    },
    /// Compute the teacher's top-k log-probabilities for the configured data once.
    Topk {
        /// Run configuration (TOML) of the distillation run that will use the cache.
        #[arg(long)]
        config: PathBuf,
    },
    /// Import SNIPS or BFCL into chat JSONL: train.jsonl, dev.jsonl and summary.json.
    Data(DataArgs),
    /// Generate replies with a .tllm model and score its function calls.
    Eval(EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Sft { config } => tinyllm_train::cli::sft(config, cli.quiet).map_err(|error| error.to_string()),
        Command::Distill { config } => tinyllm_train::cli::distill(config, cli.quiet).map_err(|error| error.to_string()),
        Command::Topk { config } => tinyllm_train::cli::topk(config, cli.quiet).map_err(|error| error.to_string()),
        // `{:#}` prints the anyhow context chain, such as the file that failed to open.
        Command::Data(args) => tinyllm_train::data::cli::run(args).map_err(|error| format!("{error:#}")),
        Command::Eval(args) => tinyllm_train::eval::cli::run(args).map_err(|error| format!("{error:#}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tinyllm-train: {error}");
            ExitCode::FAILURE
        }
    }
}
