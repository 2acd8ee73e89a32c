//! The `tinyllm-convert` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tinyllm::DType;
use tinyllm_convert::{convert, ConvertOptions};

/// Converts a Hugging Face model directory or a GGUF file into a .tllm file.
#[derive(Parser, Debug)]
#[command(name = "tinyllm-convert", version, about)]
struct Args {
    /// Input: a Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a GGUF file.
    input: PathBuf,
    /// Output .tllm file; replaced atomically if it exists.
    #[arg(short, long)]
    output: PathBuf,
    /// Element type of the weight matrices: f32, f16 or bf16. Norm weights and biases stay f32.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// Print only the totals, not the table of tensors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_dtype(name: &str) -> Result<DType, String> {
    DType::from_name(name).ok_or_else(|| format!("unknown type \"{name}\"; expected f32, f16 or bf16"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ConvertOptions { dtype: args.dtype };
    match convert(&args.input, &args.output, &options) {
        Ok(summary) => {
            if !args.quiet {
                println!("{:<28} {:<24} {:>6} -> {:<5} {:>14} {:>12}", "tensor", "source", "type", "type", "shape", "bytes");
                for t in &summary.tensors {
                    let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
                    println!("{:<28} {:<24} {:>6} -> {:<5} {:>14} {:>12}", t.name, t.source_name, t.source_type, t.dtype, shape, t.bytes);
                }
            }
            println!(
                "wrote {}: {} tensors, {} parameters ({:.1} M), {} bytes ({:.1} MiB)",
                summary.output.display(),
                summary.tensors.len(),
                summary.parameters,
                summary.parameters as f64 / 1e6,
                summary.file_bytes,
                summary.file_bytes as f64 / (1024.0 * 1024.0)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            // The message already includes its causes.
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
