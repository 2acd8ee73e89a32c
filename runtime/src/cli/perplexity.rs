//! `tinyllm perplexity`: perplexity of a model on a text file and, against a reference model,
//! the KL divergence of its next-token distributions and the top-1 agreement.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use tinyllm::{Model, Session, Tokenizer};


/// Options of `tinyllm perplexity`.
#[derive(Args, Debug)]
pub struct PerplexityArgs {
    /// Path of a .tllm model; repeat to score several models on the same tokens in one pass.
    #[arg(short, long = "model", required = true)]
    models: Vec<PathBuf>,
    /// Text file to score.
    #[arg(short, long)]
    file: PathBuf,
    /// Tokens per chunk; each chunk is scored from an empty context, and only its second half
    /// counts, so every scored prediction sees at least half a chunk of context.
    #[arg(long, default_value_t = 512)]
    chunk: usize,
    /// Number of chunks to score (from the start of the file); 0 scores every full chunk.
    #[arg(long, default_value_t = 16)]
    chunks: usize,
    /// A reference model (for example the f32 file) to compare next-token distributions with.
    /// It always runs with an f32 KV cache.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Element type of the scored models' KV cache: f32, f16 or q8_0. Scoring a model with f16
    /// or q8_0 against itself as --reference measures what that cache costs.
    #[arg(long, default_value = "f32", value_parser = super::parse_kv_type)]
    kv_type: tinyllm::KvType,
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

/// Scores of one model.
#[derive(Default)]
struct Scores {
    negative_log_likelihood: f64,
    scored: usize,
    kl: Vec<f64>,
    top1_agree: usize,
}

/// Runs `tinyllm perplexity`.
pub fn perplexity(args: PerplexityArgs) -> Result<()> {
    let models: Vec<Model> = args.models.iter().map(|p| Model::open(p).map_err(anyhow::Error::from)).collect::<Result<_>>()?;
    let reference = args.reference.as_ref().map(Model::open).transpose().context("opening the reference model")?;
    let vocab = models[0].metadata().vocab_size;
    for (model, path) in models.iter().zip(&args.models).chain(reference.iter().zip(args.reference.iter())) {
        if model.metadata().vocab_size != vocab {
            bail!("{} has {} tokens in its vocabulary, {} has {vocab}; compare models with the same tokenizer", path.display(), model.metadata().vocab_size, args.models[0].display());
        }
    }
    let tokenizer = Tokenizer::from_model(&models[0])?;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let tokens = tokenizer.encode(&text, false)?;
    let max_context = models.iter().map(|m| m.metadata().max_context as usize).min().unwrap_or(0);
    if args.chunk < 3 || args.chunk > max_context {
        bail!("--chunk {} must be between 3 (the least that scores a prediction in the second half) and the models' context of {max_context}", args.chunk);
    }
    let available = tokens.len() / args.chunk;
    let chunks = if args.chunks == 0 { available } else { args.chunks.min(available) };
    if chunks == 0 {
        bail!("{} has {} tokens, fewer than one chunk of {}; lower --chunk or use a longer text", args.file.display(), tokens.len(), args.chunk);
    }
    let vocab = vocab as usize;
    eprintln!("{} tokens in {}; scoring {chunks} chunks of {} tokens", tokens.len(), args.file.display(), args.chunk);

    let start = Instant::now();
    let mut scores: Vec<Scores> = models.iter().map(|_| Scores::default()).collect();
    for c in 0..chunks {
        let chunk = &tokens[c * args.chunk..(c + 1) * args.chunk];
        let reference_logits = match &reference {
            Some(reference) => Some(Session::new(reference, Some(args.chunk)).eval_all_logits(chunk)?.to_vec()),
            None => None,
        };
        for (model, score) in models.iter().zip(scores.iter_mut()) {
            let logits = Session::with_kv_type(model, Some(args.chunk), args.kv_type).eval_all_logits(chunk)?.to_vec();
            for t in args.chunk / 2..args.chunk - 1 {
                let row = &logits[t * vocab..(t + 1) * vocab];
                let log_p = log_softmax(row);
                score.negative_log_likelihood -= log_p[chunk[t + 1] as usize];
                score.scored += 1;
                if let Some(reference_logits) = &reference_logits {
                    let reference_row = &reference_logits[t * vocab..(t + 1) * vocab];
                    let log_q = log_softmax(reference_row);
                    let kl: f64 = log_q.iter().zip(&log_p).map(|(&q, &p)| q.exp() * (q - p)).sum();
                    score.kl.push(kl.max(0.0));
                    score.top1_agree += usize::from(argmax(row) == argmax(reference_row));
                }
            }
        }
        eprintln!("chunk {}/{chunks} done ({:.0} s)", c + 1, start.elapsed().as_secs_f64());
    }

    println!("text: {} ({} tokens scored per model: {chunks} chunks of {}, second halves)", args.file.display(), scores[0].scored, args.chunk);
    if let Some(reference) = &args.reference {
        println!("reference: {}", reference.display());
    }
    println!("{:<40} {:>10} {:>10} {:>10} {:>8}", "model", "perplexity", "KL mean", "KL p99", "top-1");
    for (path, score) in args.models.iter().zip(scores.iter_mut()) {
        let ppl = (score.negative_log_likelihood / score.scored as f64).exp();
        if score.kl.is_empty() {
            println!("{:<40} {:>10.4} {:>10} {:>10} {:>8}", path.display(), ppl, "-", "-", "-");
            continue;
        }
        score.kl.sort_by(|a, b| a.total_cmp(b));
        let n = score.kl.len();
        let mean = score.kl.iter().sum::<f64>() / n as f64;
        let p99 = score.kl[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1];
        println!("{:<40} {:>10.4} {:>10.6} {:>10.6} {:>7.2}%", path.display(), ppl, mean, p99, 100.0 * score.top1_agree as f64 / n as f64);
    }
    eprintln!("time: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
