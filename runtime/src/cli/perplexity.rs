//! `tinyllm perplexity`: perplexity of a model on a text file and, against a reference model,
//! the KL divergence of its next-token distributions and the top-1 agreement.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use tinyllm::{Model, Session, Tokenizer};

use super::ModelArg;

/// Options of `tinyllm perplexity`.
#[derive(Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Text file to score.
    #[arg(short, long)]
    file: PathBuf,
    /// Tokens per chunk; each chunk is scored from an empty context, as llama-perplexity does.
    #[arg(long, default_value_t = 512)]
    chunk: usize,
    /// Number of chunks to score (from the start of the file); 0 scores every full chunk.
    #[arg(long, default_value_t = 16)]
    chunks: usize,
    /// A reference model (for example the f32 file) to compare next-token distributions with.
    #[arg(long)]
    reference: Option<PathBuf>,
}

/// Natural-log softmax of `logits`.
fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let log_sum = sum.ln() + max;
    logits.iter().map(|&l| l as f64 - log_sum).collect()
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Runs `tinyllm perplexity`.
pub fn perplexity(args: PerplexityArgs) -> Result<()> {
    let model = Model::open(&args.model.model)?;
    let reference = args.reference.as_ref().map(Model::open).transpose().context("opening the reference model")?;
    if let Some(reference) = &reference {
        if reference.metadata().vocab_size != model.metadata().vocab_size {
            bail!("the reference model has {} tokens in its vocabulary, the model {}; compare models with the same tokenizer", reference.metadata().vocab_size, model.metadata().vocab_size);
        }
    }
    let tokenizer = Tokenizer::from_model(&model)?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let tokens = tokenizer.encode(&text, false)?;
    if args.chunk < 2 || args.chunk > model.metadata().max_context as usize {
        bail!("--chunk {} must be between 2 and the model's context of {}", args.chunk, model.metadata().max_context);
    }
    let available = tokens.len() / args.chunk;
    let chunks = if args.chunks == 0 { available } else { args.chunks.min(available) };
    if chunks == 0 {
        bail!("{} has {} tokens, fewer than one chunk of {}", args.file.display(), tokens.len(), args.chunk);
    }
    let vocab = model.metadata().vocab_size as usize;
    eprintln!("scoring {chunks} chunks of {} tokens ({} tokens, the second half of each chunk is scored)", args.chunk, chunks * args.chunk);

    let start = Instant::now();
    let mut nll_sum = 0.0f64;
    let mut scored = 0usize;
    let mut kls: Vec<f64> = Vec::new();
    let mut agree = 0usize;
    for c in 0..chunks {
        let chunk = &tokens[c * args.chunk..(c + 1) * args.chunk];
        let logits = Session::new(&model, Some(args.chunk)).eval_all_logits(chunk)?.to_vec();
        let reference_logits = match &reference {
            Some(reference) => Some(Session::new(reference, Some(args.chunk)).eval_all_logits(chunk)?.to_vec()),
            None => None,
        };
        // Score the second half, where every prediction has at least half a chunk of context.
        for t in args.chunk / 2..args.chunk - 1 {
            let row = &logits[t * vocab..(t + 1) * vocab];
            let log_p = log_softmax(row);
            nll_sum -= log_p[chunk[t + 1] as usize];
            scored += 1;
            if let Some(reference_logits) = &reference_logits {
                let reference_row = &reference_logits[t * vocab..(t + 1) * vocab];
                let log_q = log_softmax(reference_row);
                let kl: f64 = log_q.iter().zip(&log_p).map(|(&q, &p)| q.exp() * (q - p)).sum();
                kls.push(kl.max(0.0));
                agree += usize::from(argmax(row) == argmax(reference_row));
            }
        }
        eprintln!("chunk {}/{chunks}: running perplexity {:.4}", c + 1, (nll_sum / scored as f64).exp());
    }
    println!("model:       {}", args.model.model.display());
    println!("tokens:      {} scored in {chunks} chunks of {}", scored, args.chunk);
    println!("perplexity:  {:.4}", (nll_sum / scored as f64).exp());
    if !kls.is_empty() {
        kls.sort_by(|a, b| a.total_cmp(b));
        let mean = kls.iter().sum::<f64>() / kls.len() as f64;
        let p99 = kls[((kls.len() as f64 * 0.99).ceil() as usize).saturating_sub(1).min(kls.len() - 1)];
        println!("reference:   {}", args.reference.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
        println!("KL mean:     {mean:.6}");
        println!("KL p99:      {p99:.6}");
        println!("top-1 agree: {:.2}%", 100.0 * agree as f64 / kls.len() as f64);
    }
    eprintln!("time: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
