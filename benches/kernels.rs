//! Matrix-vector (decode) and matrix-matrix (prefill) products for each weight format and
//! each instruction set this CPU supports, on the shapes of a Qwen2.5-0.5B FFN projection.
//!
//! Run: `cargo bench -p tinyllm-benches --bench kernels`; `TINYLLM_ISA` has no effect here,
//! every supported table is measured side by side.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tinyllm::kernels::{self, matmul, Isa, QuantizedInput, Serial};
use tinyllm::quant::{quantize_matrix, QuantFormat, QuantType};
use tinyllm::tensor::{Matrix, TensorData};
use tinyllm_benches::values;

const ROWS: usize = 4864;
const COLS: usize = 896;

fn bench_formats(c: &mut Criterion) {
    let weights = values(1, ROWS * COLS);
    for tokens in [1usize, 16] {
        let name = if tokens == 1 { "matvec" } else { "matmul16" };
        let mut group = c.benchmark_group(format!("{name}_{ROWS}x{COLS}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements((ROWS * COLS * tokens) as u64));
        let x = values(2, tokens * COLS);
        for format in QuantFormat::ALL {
            let qtype = QuantType { format, interleave: 4 };
            let data = quantize_matrix(&weights, ROWS, COLS, qtype);
            let matrix = Matrix { data: TensorData::Quant { qtype, data: &data }, rows: ROWS, cols: COLS };
            for isa in Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
                let table = kernels::for_isa(isa).expect("supported");
                let mut out = vec![0.0; tokens * ROWS];
                group.bench_function(BenchmarkId::new(qtype.to_string(), isa), |b| {
                    b.iter(|| {
                        let mut xq = QuantizedInput::default();
                        matmul(table, &matrix, &x, &mut xq, tokens, &mut out, &Serial);
                    })
                });
            }
        }
        let f32_matrix = Matrix { data: TensorData::F32(&weights), rows: ROWS, cols: COLS };
        for isa in Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
            let table = kernels::for_isa(isa).expect("supported");
            let mut out = vec![0.0; tokens * ROWS];
            group.bench_function(BenchmarkId::new("f32", isa), |b| {
                b.iter(|| matmul(table, &f32_matrix, &x, &mut QuantizedInput::default(), tokens, &mut out, &Serial))
            });
        }
        group.finish();
    }
}

fn bench_vector_ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("vector_4864");
    let a = values(3, ROWS);
    let b = values(4, ROWS);
    for isa in Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
        let table = kernels::for_isa(isa).expect("supported");
        group.bench_function(BenchmarkId::new("dot_f32", isa), |bench| bench.iter(|| (table.dot_f32)(&a, &b)));
        let mut y = b.clone();
        group.bench_function(BenchmarkId::new("axpy_f32", isa), |bench| bench.iter(|| (table.axpy_f32)(0.5, &a, &mut y)));
        let mut gate = a.clone();
        group.bench_function(BenchmarkId::new("silu_mul", isa), |bench| {
            bench.iter(|| {
                gate.copy_from_slice(&a);
                (table.silu_mul)(&mut gate, &b)
            })
        });
    }
    group.finish();
}

/// Times one attention head of 64 values over 512 cached positions of a Qwen2.5-0.5B layer
/// (2 KV heads): scores, softmax and the weighted sum of values, for the f16 and Q8_0 caches.
fn bench_attention(c: &mut Criterion) {
    const POSITIONS: usize = 512;
    const HEAD_DIM: usize = 64;
    const STRIDE: usize = 2 * HEAD_DIM;
    let mut group = c.benchmark_group(format!("attention_{HEAD_DIM}x{POSITIONS}"));
    group.throughput(Throughput::Elements((2 * POSITIONS * HEAD_DIM) as u64));
    let cache = values(5, POSITIONS * STRIDE);
    let f16_cache: Vec<half::f16> = cache.iter().map(|&v| half::f16::from_f32(v)).collect();
    let mut q8_0_cache = Vec::new();
    tinyllm::quant::quantize_row_q8_0(&cache, &mut q8_0_cache);
    let q = values(6, HEAD_DIM);
    let mut scores = vec![0.0; POSITIONS];
    let mut out = vec![0.0; HEAD_DIM];

    for isa in Isa::ALL.into_iter().filter(|isa| isa.is_supported()) {
        let table = kernels::for_isa(isa).expect("supported");
        group.bench_function(BenchmarkId::new("f16", isa), |bench| {
            bench.iter(|| {
                (table.scores_f16)(&f16_cache, STRIDE, &q, &mut scores);
                (table.softmax)(&mut scores);
                (table.mix_f16)(&f16_cache, STRIDE, &scores, &mut out);
            })
        });
        group.bench_function(BenchmarkId::new("q8_0", isa), |bench| {
            bench.iter(|| {
                (table.scores_q8_0)(&q8_0_cache, STRIDE / 32, &q, &mut scores);
                (table.softmax)(&mut scores);
                (table.mix_q8_0)(&q8_0_cache, STRIDE / 32, &scores, &mut out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_formats, bench_vector_ops, bench_attention);
criterion_main!(benches);
