//! The `tinyllm-convert` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tinyllm::DType;
use tinyllm_convert::recipe::{Override, Preset, Recipe};
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
    /// Float type of the weight matrices that are not quantized: f32, f16 or bf16. Norm
    /// weights and biases are always f32.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// Quantization of the weight matrices: none, q8 (Q8_0), q4 (Q4_0), q4-g128 or q4-g64 (Q4_0
    /// in groups of 128 or 64 where that is smaller), q4-minmax (Q4_1), mix (the recommended recipe: Q4_0 FFN gate and up, Q8_0
    /// elsewhere) or source (keep a GGUF's Q8_0/Q4_0/Q4_1 blocks
    /// without requantization).
    #[arg(long, default_value = "none", value_parser = parse_preset)]
    quant: Preset,
    /// Per-tensor type, PATTERN=TYPE, repeatable; `*` matches any text and later overrides
    /// win. Example: --override 'token_embd=q8_0' --override 'layers.*.ffn_down=q4_1'.
    #[arg(long = "override", value_parser = Override::parse)]
    overrides: Vec<Override>,
    /// Rows stored together in quantized matrices: 4 (read by the 4-row kernels) or 1.
    #[arg(long, default_value_t = 4, value_parser = parse_interleave)]
    interleave: u8,
    /// Print only the totals, not the table of tensors.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_interleave(text: &str) -> Result<u8, String> {
    match text {
        "1" => Ok(1),
        "4" => Ok(4),
        _ => Err(format!("invalid interleave \"{text}\"; expected 1 or 4")),
    }
}

fn parse_preset(name: &str) -> Result<Preset, String> {
    Preset::from_name(name).ok_or_else(|| format!("unknown quantization \"{name}\"; expected none, q8, q4, q4-g128, q4-g64, q4-minmax, mix or source"))
}

fn parse_dtype(name: &str) -> Result<DType, String> {
    DType::from_name(name).ok_or_else(|| format!("unknown type \"{name}\"; expected f32, f16 or bf16"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ConvertOptions { recipe: Recipe { float: args.dtype, preset: args.quant, overrides: args.overrides, interleave: args.interleave } };
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
