//! Times every kernel table this CPU supports on the matrix shapes of one SmolLM2-135M layer
//! (hidden size 576, feed-forward size 1536), one token at a time as in decoding, on one
//! thread. Prints microseconds per call and the weight bytes read per second.
//!
//! Run with `cargo run --release -p tinyllm --example kernel_bench`. The numbers depend on
//! the CPU, its caches and other load; compare tables within one run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tinyllm::kernels::{self, matmul, Isa, Kernels, QuantizedInput, Serial};
use tinyllm::quant::{quantize_matrix, QuantFormat, QuantType};
use tinyllm::tensor::{Matrix, TensorData};

/// Minimum measured time per case.
const MIN_TIME: Duration = Duration::from_millis(300);

/// Calls `f` until `MIN_TIME` has passed and returns the mean time per call.
fn time(mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < MIN_TIME {
        f();
        calls += 1;
    }
    start.elapsed() / calls
}

/// Deterministic values in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn main() {
    let tables: Vec<&Kernels> = Isa::ALL.into_iter().filter(|isa| isa.is_supported()).map(|isa| kernels::for_isa(isa).expect("a supported table")).collect();
    println!("{:<32} {:>8} {:>10} {:>8}", "case", "table", "µs/call", "GB/s");
    for (rows, cols, name) in [(1536, 576, "ffn_gate 1536x576"), (576, 1536, "ffn_down 576x1536")] {
        let weights = values(rows as u64, rows * cols);
        let x = values(7, cols);
        for format in QuantFormat::ALL {
            let qtype = QuantType { format, interleave: 4 };
            let data = quantize_matrix(&weights, rows, cols, qtype);
            let matrix = Matrix { data: TensorData::Quant { qtype, data: &data }, rows, cols };
            for &table in &tables {
                let mut out = vec![0.0f32; rows];
                let mut xq = QuantizedInput::default();
                let per_call = time(|| {
                    xq.reset();
                    matmul(table, &matrix, black_box(&x), &mut xq, 1, &mut out, &Serial);
                    black_box(&out);
                });
                let bandwidth = data.len() as f64 / per_call.as_secs_f64() / 1e9;
                println!("{:<32} {:>8} {:>10.1} {:>8.2}", format!("{name} {qtype}"), table.isa.name(), per_call.as_secs_f64() * 1e6, bandwidth);
            }
        }
    }

    let a = values(1, 1536);
    let b = values(2, 1536);
    for &table in &tables {
        let dot = time(|| {
            black_box((table.dot_f32)(black_box(&a), black_box(&b)));
        });
        let mut gate = a.clone();
        let silu = time(|| {
            gate.copy_from_slice(&a);
            (table.silu_mul)(black_box(&mut gate), black_box(&b));
        });
        println!("{:<32} {:>8} {:>10.3}", "dot_f32 1536", table.isa.name(), dot.as_secs_f64() * 1e6);
        println!("{:<32} {:>8} {:>10.3}", "silu_mul 1536", table.isa.name(), silu.as_secs_f64() * 1e6);
    }
}
