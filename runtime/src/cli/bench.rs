//! `tinyllm bench`: prompt-processing and generation speed, in the manner of llama-bench.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use tinyllm::{Model, Session};

use super::kernels_line;

/// Options of `tinyllm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Path of the .tllm model file.
    #[arg(short, long)]
    model: PathBuf,
    /// Prompt lengths to time, comma-separated (prompt processing, "pp").
    #[arg(short = 'p', long, value_delimiter = ',', default_value = "512")]
    prompt: Vec<usize>,
    /// Numbers of tokens to generate one at a time, comma-separated (text generation, "tg").
    #[arg(short = 'n', long, value_delimiter = ',', default_value = "128")]
    generate: Vec<usize>,
    /// Thread counts, comma-separated; 0 means one per physical core.
    #[arg(short = 't', long, value_delimiter = ',', default_value = "0")]
    threads: Vec<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long, default_value_t = 5)]
    repetitions: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Element type of the KV cache: f16, f32 or q8_0.
    #[arg(long, default_value = "f16", value_parser = super::parse_kv_type)]
    kv_type: tinyllm::KvType,
    /// Also measure memory read bandwidth (a STREAM-like pass over 1 GiB with each thread
    /// count), the ceiling of decode speed for a model that does not fit in cache.
    #[arg(long)]
    bandwidth: bool,
}

/// Read bandwidth in GB/s: `threads` threads sum disjoint parts of a buffer much larger than
/// any cache, best of three passes.
fn read_bandwidth(threads: usize) -> f64 {
    const BYTES: usize = 1 << 30;
    let buffer: Vec<u64> = (0..BYTES / 8).map(|i| i as u64).collect();
    let pool = tinyllm::threads::ThreadPool::new(threads);
    let parts = threads * 4;
    let per_part = buffer.len() / parts;
    let sums: Vec<std::sync::atomic::AtomicU64> = (0..parts).map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        tinyllm::kernels::Parallel::run(&pool, parts, &|i| {
            let part = &buffer[i * per_part..(i + 1) * per_part];
            // Eight independent sums keep several loads in flight.
            let mut lanes = [0u64; 8];
            for chunk in part.chunks_exact(8) {
                for (lane, &value) in lanes.iter_mut().zip(chunk) {
                    *lane = lane.wrapping_add(value);
                }
            }
            let total = lanes.iter().fold(0u64, |a, &b| a.wrapping_add(b));
            sums[i].store(total, std::sync::atomic::Ordering::Relaxed);
        });
        let seconds = start.elapsed().as_secs_f64();
        best = best.max((per_part * parts * 8) as f64 / seconds / 1e9);
    }
    std::hint::black_box(&sums);
    best
}

/// Mean and sample standard deviation.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, variance.sqrt())
}

/// Deterministic token ids spread over the vocabulary, as llama-bench uses random tokens.
fn tokens(count: usize, vocab: u32, seed: u64) -> Vec<u32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % u64::from(vocab)) as u32
        })
        .collect()
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), when known.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The CPU model name, when the OS reports it.
fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model") || l.starts_with("CPU part"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

struct Row {
    test: String,
    threads: usize,
    tokens_per_second: (f64, f64),
}

/// Runs `tinyllm bench`.
pub fn bench(args: BenchArgs) -> Result<()> {
    if args.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    let opened = Instant::now();
    let model = Model::open(&args.model)?;
    let meta = model.metadata();
    let vocab = meta.vocab_size;
    let weight_bytes: u64 = model.tensors().iter().map(|t| t.length).sum();
    // Decode reads every weight once per token, except the token embedding matrix, of which it
    // reads one row (unless the output head shares it).
    let embedding_bytes = model.tensors().iter().find(|t| t.name == "token_embd").map_or(0, |t| t.length);
    let read_per_token = if meta.tie_embeddings { weight_bytes } else { weight_bytes - embedding_bytes };
    let bits_per_weight = weight_bytes as f64 * 8.0 / model.parameter_count().max(1) as f64;

    // Open to first token as `tinyllm run` meets it: the default thread count (the physical
    // cores), a new session, one token.
    let first_token_threads = tinyllm::threads::physical_cores();
    let first_token = {
        let mut session = Session::with_threads(&model, Some(16), first_token_threads);
        session.eval(&[meta.bos_token_id.unwrap_or(0)])?;
        opened.elapsed()
    };

    let mut rows = Vec::new();
    let mut kv_cache_bytes = 0;
    let max_len = args.prompt.iter().chain(args.generate.iter()).copied().max().unwrap_or(1) + 1;
    if max_len > meta.max_context as usize {
        bail!(
            "a test of {} tokens (plus the first token) does not fit the model's context of {} tokens; use smaller -p and -n values",
            max_len - 1,
            meta.max_context
        );
    }
    if args.prompt.iter().chain(args.generate.iter()).all(|&n| n == 0) {
        bail!("every -p and -n value is 0, so there is nothing to time; give at least one positive length");
    }
    for &requested in &args.threads {
        let threads = if requested == 0 { tinyllm::threads::physical_cores() } else { requested };
        let mut session = Session::with_kv_type(&model, Some(max_len), args.kv_type);
        session.set_threads(threads);
        for &p in args.prompt.iter().filter(|&&p| p > 0) {
            let prompt = tokens(p, vocab, p as u64);
            session.reset();
            session.eval(&prompt)?; // warm-up
            let mut rates = Vec::new();
            for _ in 0..args.repetitions {
                session.reset();
                let start = Instant::now();
                session.eval(&prompt)?;
                rates.push(p as f64 / start.elapsed().as_secs_f64());
            }
            rows.push(Row { test: format!("pp{p}"), threads, tokens_per_second: mean_std(&rates) });
        }
        for &n in args.generate.iter().filter(|&&n| n > 0) {
            let generated = tokens(n, vocab, 1000 + n as u64);
            let mut rates = Vec::new();
            for repetition in 0..=args.repetitions {
                session.reset();
                session.eval(&[meta.bos_token_id.unwrap_or(0)])?;
                let start = Instant::now();
                for &token in &generated {
                    session.eval(&[token])?;
                }
                // The first pass warms caches and the pool and is not counted.
                if repetition > 0 {
                    rates.push(n as f64 / start.elapsed().as_secs_f64());
                }
            }
            rows.push(Row { test: format!("tg{n}"), threads, tokens_per_second: mean_std(&rates) });
        }
        kv_cache_bytes = kv_cache_bytes.max(session.kv_cache_bytes());
    }

    let rss = peak_rss();
    let bandwidths: Vec<(usize, f64)> = if args.bandwidth {
        args.threads.iter().map(|&t| if t == 0 { tinyllm::threads::physical_cores() } else { t }).map(|t| (t, read_bandwidth(t))).collect()
    } else {
        Vec::new()
    };
    let ceiling = |threads: usize| bandwidths.iter().find(|(t, _)| *t == threads).map(|(_, gbps)| *gbps);
    if args.json {
        let results: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut value = serde_json::json!({
                    "test": r.test, "threads": r.threads,
                    "tokens_per_second": r.tokens_per_second.0, "tokens_per_second_std": r.tokens_per_second.1,
                });
                if r.test.starts_with("tg") {
                    let achieved = r.tokens_per_second.0 * read_per_token as f64 / 1e9;
                    value["weight_gb_per_second"] = serde_json::json!(achieved);
                    if let Some(measured) = ceiling(r.threads) {
                        value["read_bandwidth_gb_per_second"] = serde_json::json!(measured);
                        value["roofline_fraction"] = serde_json::json!(achieved / measured);
                    }
                }
                value
            })
            .collect();
        let report = serde_json::json!({
            "model": args.model.display().to_string(),
            "architecture": meta.architecture.name(),
            "parameters": model.parameter_count(),
            "file_bytes": model.file_size(),
            "weight_bytes": weight_bytes,
            "bits_per_weight": bits_per_weight,
            "kernels": kernels_line(),
            "kv_type": args.kv_type.name(),
            "cpu": cpu_name(),
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "physical_cores": tinyllm::threads::physical_cores(),
            "open_to_first_token_ms": first_token.as_secs_f64() * 1e3,
            "open_to_first_token_threads": first_token_threads,
            "peak_rss_bytes": rss,
            "kv_cache_bytes": kv_cache_bytes,
            "repetitions": args.repetitions,
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("model:      {} ({}, {:.1} M parameters)", args.model.display(), meta.architecture.name(), model.parameter_count() as f64 / 1e6);
    println!("size:       {:.1} MiB of weights, {bits_per_weight:.2} bits per weight", weight_bytes as f64 / 1048576.0);
    println!("kernels:    {}", kernels_line());
    println!("KV cache:   {}", args.kv_type.name());
    println!("machine:    {}, {} logical CPUs, {} physical cores", cpu_name(), std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), tinyllm::threads::physical_cores());
    println!("open to first token: {:.1} ms (open, then one token on {first_token_threads} threads)", first_token.as_secs_f64() * 1e3);
    if let Some(rss) = rss {
        let over = rss as f64 - model.file_size() as f64 - kv_cache_bytes as f64;
        println!(
            "peak RSS:   {:.1} MiB: file {:.1} MiB + KV cache {:.1} MiB + {:.1} MiB",
            rss as f64 / 1048576.0,
            model.file_size() as f64 / 1048576.0,
            kv_cache_bytes as f64 / 1048576.0,
            over / 1048576.0
        );
    }
    for (threads, gbps) in &bandwidths {
        println!("read bandwidth: {gbps:.2} GB/s with {threads} threads");
    }
    println!();
    println!("| {:<6} | {:>7} | {:>20} | {:>12} | {:>9} |", "test", "threads", "tokens/s", "weights GB/s", "roofline");
    println!("|{:-<8}|{:->9}|{:->22}|{:->14}|{:->11}|", "", "", "", "", "");
    for r in &rows {
        let (mean, std) = r.tokens_per_second;
        let achieved = mean * read_per_token as f64 / 1e9;
        let (bandwidth, roofline) = match (r.test.starts_with("tg"), ceiling(r.threads)) {
            (true, Some(measured)) => (format!("{achieved:.2}"), format!("{:.0}%", 100.0 * achieved / measured)),
            (true, None) => (format!("{achieved:.2}"), "-".into()),
            _ => ("-".into(), "-".into()),
        };
        println!("| {:<6} | {:>7} | {:>12.2} ± {:>5.2} | {:>12} | {:>9} |", r.test, r.threads, mean, std, bandwidth, roofline);
    }
    Ok(())
}
