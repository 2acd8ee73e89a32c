//! End-to-end decode: one token through a whole model, with the KV cache holding 64 tokens.
//!
//! Uses the model named by `TINYLLM_BENCH_MODEL` (a .tllm file); without it, the benchmark
//! prints why and measures nothing. Run:
//! `TINYLLM_BENCH_MODEL=models/smollm2-q8.tllm cargo bench -p tinyllm-benches --bench decode`.

use criterion::{criterion_group, criterion_main, Criterion};
use tinyllm::{Model, Session};

fn bench_decode(c: &mut Criterion) {
    let Ok(path) = std::env::var("TINYLLM_BENCH_MODEL") else {
        eprintln!("decode benchmark skipped: set TINYLLM_BENCH_MODEL to a .tllm file");
        return;
    };
    let model = Model::open(&path).expect("the benchmark model opens");
    let vocab = model.metadata().vocab_size;
    for threads in [1, 2] {
        let mut session = Session::with_threads(&model, Some(4096), threads);
        let prompt: Vec<u32> = (0..64).map(|i| (i * 7919) % vocab).collect();
        session.eval(&prompt).expect("prompt fits");
        let mut group = c.benchmark_group("decode");
        group.sample_size(20);
        group.bench_function(format!("{path} threads={threads}"), |b| {
            b.iter(|| {
                session.eval(&[17]).expect("token fits");
                // Keep the cache at 64 tokens so every iteration does the same work.
                session.truncate(64);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
