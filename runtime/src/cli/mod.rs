//! Command-line interface: argument definitions and dispatch to the subcommands.

mod bench;
mod chat;
mod generate;
mod inspect;
mod perplexity;
mod run;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tinyllm::SamplerParams;

/// Runs small language models stored as .tllm files.
#[derive(Parser, Debug)]
#[command(name = "tinyllm", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a continuation of one prompt, streamed to standard output.
    Run(run::RunArgs),
    /// Chat interactively; each line of standard input is a user message.
    Chat(chat::ChatArgs),
    /// Print the metadata, per-layer dimensions and tensor table of a model.
    Inspect(inspect::InspectArgs),
    /// Measure perplexity on a text file, and KL divergence against a reference model.
    Perplexity(perplexity::PerplexityArgs),
    /// Time prompt processing and token generation (mean ± standard deviation).
    Bench(bench::BenchArgs),
}

/// Sampling and context options shared by `run` and `chat`.
#[derive(Args, Debug, Clone)]
pub struct GenerationArgs {
    /// Maximum number of tokens to generate.
    #[arg(short = 'n', long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 selects greedy decoding.
    #[arg(long, default_value_t = 0.8, value_parser = parse_temperature, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Sample among the k most likely tokens; 0 disables the limit.
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Sample among the most likely tokens whose probabilities sum to p; 1 disables it.
    #[arg(long, default_value_t = 0.95, value_parser = parse_top_p, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than min-p times the most likely one; 0 disables it.
    #[arg(long, default_value_t = 0.05, value_parser = parse_min_p, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Penalty for tokens among the last --repeat-last-n; 1 disables it.
    #[arg(long, default_value_t = 1.0, value_parser = parse_repeat_penalty, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    /// Number of recent tokens the repetition penalty looks at.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Seed of the sampler; the same seed, model and prompt give the same output.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads for the matrix products; 0 uses one per physical core (performance cores only
    /// where the OS tells them apart).
    #[arg(short = 't', long, default_value_t = 0)]
    pub threads: usize,
    /// Context length in tokens (capped by the model's maximum).
    #[arg(short = 'c', long, default_value_t = tinyllm::DEFAULT_CONTEXT, value_parser = parse_context)]
    pub context: usize,
    /// Element type of the KV cache: f16 (half the memory of f32), f32, or q8_0. q8_0 keeps
    /// int8 values in blocks of 32 with an f16 scale, about a quarter of f32, and needs a
    /// head_dim that is a multiple of 32.
    #[arg(long, default_value = "f16", value_parser = parse_kv_type)]
    pub kv_type: tinyllm::KvType,
    /// Print model and timing details to standard error.
    #[arg(short, long)]
    pub verbose: bool,
}

impl GenerationArgs {
    /// The thread count to use: `--threads`, or the physical cores when it is 0.
    /// Warns when the count exceeds the logical CPUs, where threads only wait for each other.
    pub fn thread_count(&self) -> usize {
        if self.threads == 0 {
            return tinyllm::threads::physical_cores();
        }
        let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.threads > logical {
            eprintln!("warning: --threads {} is more than the {logical} logical CPUs; expect it to run slower than --threads 0", self.threads);
        }
        self.threads
    }

    /// The sampler parameters these options select.
    pub fn sampler_params(&self) -> SamplerParams {
        SamplerParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        }
    }
}

/// The model file argument shared by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct ModelArg {
    /// Path of the .tllm model file.
    #[arg(short, long)]
    pub model: PathBuf,
}

/// Describes the kernel table in use: its instruction set, whether `TINYLLM_ISA` forced it,
/// and the best one this CPU supports.
pub fn kernels_line() -> String {
    let forced = std::env::var("TINYLLM_ISA").ok();
    match tinyllm::kernels::active() {
        Ok(kernels) => match forced {
            Some(_) => format!("{} (forced by TINYLLM_ISA; detected {})", kernels.isa, tinyllm::kernels::detect()),
            None => format!("{} (detected)", kernels.isa),
        },
        Err(error) => format!("unavailable: {error}"),
    }
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // An invalid TINYLLM_ISA fails every command up front rather than at the first token.
    tinyllm::kernels::active()?;
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Chat(args) => chat::chat(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Perplexity(args) => perplexity::perplexity(args),
        Command::Bench(args) => bench::bench(args),
    }
}

/// Parses a finite number and checks it against `accept`; `range` describes what it accepts.
fn parse_in_range(text: &str, accept: fn(f32) -> bool, range: &str) -> Result<f32, String> {
    let value: f32 = text.trim().parse().map_err(|_| format!("\"{text}\" is not a number"))?;
    if value.is_finite() && accept(value) {
        Ok(value)
    } else {
        Err(format!("give {range}"))
    }
}

/// Parses `--temperature`: 0 (greedy) or more.
fn parse_temperature(text: &str) -> Result<f32, String> {
    parse_in_range(text, |v| v >= 0.0, "0 (greedy) or a positive number")
}

/// Parses `--top-p`: above 0, at most 1.
fn parse_top_p(text: &str) -> Result<f32, String> {
    parse_in_range(text, |v| v > 0.0 && v <= 1.0, "a number above 0 and at most 1 (1 disables it)")
}

/// Parses `--min-p`: 0 to 1.
fn parse_min_p(text: &str) -> Result<f32, String> {
    parse_in_range(text, |v| (0.0..=1.0).contains(&v), "a number from 0 to 1 (0 disables it)")
}

/// Parses `--repeat-penalty`: above 0.
fn parse_repeat_penalty(text: &str) -> Result<f32, String> {
    parse_in_range(text, |v| v > 0.0, "a number above 0 (1 disables it)")
}

/// Parses `--context`: at least 2 tokens (a prompt token and a generated one).
fn parse_context(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(value) if value >= 2 => Ok(value),
        Ok(_) => Err("a context needs room for a prompt token and a reply token; give 2 or more".to_string()),
        Err(_) => Err(format!("\"{text}\" is not a whole number of tokens")),
    }
}

/// Parses `--kv-type`.
pub fn parse_kv_type(name: &str) -> Result<tinyllm::KvType, String> {
    tinyllm::KvType::from_name(name).ok_or_else(|| format!("unknown KV cache type \"{name}\"; use f16, f32 or q8_0"))
}
