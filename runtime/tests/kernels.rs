//! Every kernel table against an f64 reference of the same quantized values, and every SIMD
//! table against the scalar one, on odd shapes (rows not a multiple of the interleave, columns
//! not a multiple of the group).

mod common;

use common::values;
use tinyllm::kernels::{self, matmul, Isa, Kernels, QuantizedInput, Serial};
use tinyllm::quant::{dequantize_row, quantize_matrix, QuantFormat, QuantType, INTERLEAVES, QK};
use tinyllm::tensor::{Matrix, TensorData};

/// Miri runs the scalar table about a thousand times slower, so it gets the odd shapes only.
const SHAPES: &[(usize, usize)] = if cfg!(miri) { &[(1, 32), (7, 96), (13, 257)] } else { &[(1, 32), (4, 64), (7, 96), (9, 200), (13, 257), (8, 576)] };
const TOKENS: &[usize] = if cfg!(miri) { &[1, 5] } else { &[1, 2, 5] };

/// The tables this CPU runs; with `TINYLLM_ISA` set, exactly that one (it must be available).
fn tables() -> Vec<&'static Kernels> {
    match std::env::var("TINYLLM_ISA") {
        Ok(name) => {
            let isa = Isa::from_name(&name).unwrap_or_else(|| panic!("TINYLLM_ISA={name} is not an instruction set"));
            let table = kernels::for_isa(isa).unwrap_or_else(|e| panic!("TINYLLM_ISA={name}: {e}"));
            assert_eq!(table.isa, isa, "for_isa({isa}) returned the {} table", table.isa);
            vec![table]
        }
        Err(_) => Isa::ALL.into_iter().filter(|isa| isa.is_supported()).map(|isa| kernels::for_isa(isa).unwrap()).collect(),
    }
}

/// `x · wᵀ` in f64 over the dequantized weights and the dequantized int8 activations.
fn reference(qtype: QuantType, data: &[u8], rows: usize, cols: usize, xq: &[f32], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * rows];
    let mut row = vec![0.0f32; cols];
    for r in 0..rows {
        dequantize_row(qtype, data, rows, cols, r, &mut row);
        for t in 0..n {
            out[t * rows + r] = row.iter().zip(&xq[t * cols..(t + 1) * cols]).map(|(&w, &x)| w as f64 * x as f64).sum();
        }
    }
    out
}

/// The activations as the kernels see them: quantized to int16 groups for Q8_0 weights and
/// to int8 groups for the others, then dequantized.
fn dequantized_activations(format: QuantFormat, x: &[f32], n: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * cols);
    for t in 0..n {
        let row = &x[t * cols..(t + 1) * cols];
        if format == QuantFormat::Q8_0 {
            let mut blocks = vec![tinyllm::quant::BlockQ16Act::default(); cols.div_ceil(QK)];
            tinyllm::quant::quantize_activations_16(row, &mut blocks);
            out.extend((0..cols).map(|i| blocks[i / QK].d * blocks[i / QK].qs[i % QK] as f32));
        } else {
            let mut blocks = vec![tinyllm::quant::BlockQ8Act::default(); cols.div_ceil(QK)];
            tinyllm::quant::quantize_activations(row, &mut blocks);
            out.extend((0..cols).map(|i| blocks[i / QK].d * blocks[i / QK].qs[i % QK] as f32));
        }
    }
    out
}

#[test]
fn quantized_matmul_matches_f64_reference() {
    for table in tables() {
        for format in QuantFormat::ALL {
            for interleave in INTERLEAVES {
                let qtype = QuantType { format, interleave };
                for (case, &(rows, cols)) in SHAPES.iter().enumerate() {
                    let w = values(100 + case as u64, rows * cols, 1.0);
                    let data = quantize_matrix(&w, rows, cols, qtype);
                    assert_eq!(data.len() as u64, qtype.byte_len(rows as u64, cols as u64).unwrap());
                    let matrix = Matrix { data: TensorData::Quant { qtype, data: &data }, rows, cols };
                    for &n in TOKENS {
                        let x = values(200 + case as u64 + n as u64, n * cols, 2.0);
                        let mut xq = QuantizedInput::default();
                        let mut out = vec![f32::NAN; n * rows];
                        matmul(table, &matrix, &x, &mut xq, n, &mut out, &Serial);
                        let expected = reference(qtype, &data, rows, cols, &dequantized_activations(format, &x, n, cols), n);
                        let scale = expected.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
                        for (i, (&got, &want)) in out.iter().zip(&expected).enumerate() {
                            assert!(
                                (got as f64 - want).abs() <= 2e-5 * scale,
                                "{} {qtype} {rows}x{cols} n={n} output {i}: {got} vs {want}",
                                table.isa
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The table the runtime itself uses: the one `TINYLLM_ISA` names, else the best detected.
/// A forced instruction set that the runtime would not run fails here.
/// The Q8_0 KV cache kernels of every table against f64 sums of the dequantized values.
#[test]
fn kv_q8_0_kernels_match_f64_reference() {
    use tinyllm::quant::quantize_row_q8_0;
    for table in tables() {
        for heads in [1usize, 2, 3] {
            let n = heads * 64;
            let values_f32 = values(40 + heads as u64, n, 3.0);
            let mut blocks = Vec::new();
            quantize_row_q8_0(&values_f32, &mut blocks);
            let dequantized: Vec<f64> = blocks.iter().flat_map(|b| b.qs.map(|q| f64::from(q) * f64::from(tinyllm::quant::f16_to_f32(b.d)))).collect();
            let x = values(50 + heads as u64, n, 1.0);
            let want: f64 = dequantized.iter().zip(&x).map(|(w, &v)| w * f64::from(v)).sum();
            let scale: f64 = dequantized.iter().zip(&x).map(|(w, &v)| (w * f64::from(v)).abs()).sum();
            let got = (table.dot_q8_0_f32)(&blocks, &x);
            assert!((f64::from(got) - want).abs() <= 1e-5 * scale, "{} dot_q8_0_f32 of {n} values: {got} vs {want}", table.isa);

            let a = 0.37f32;
            let mut y = x.clone();
            (table.axpy_q8_0)(a, &blocks, &mut y);
            for i in 0..n {
                let want = f64::from(x[i]) + f64::from(a) * dequantized[i];
                let bound = 1e-6 * (f64::from(x[i]).abs() + (f64::from(a) * dequantized[i]).abs());
                assert!((f64::from(y[i]) - want).abs() <= bound, "{} axpy_q8_0 element {i}: {} vs {want}", table.isa, y[i]);
            }
        }
    }
}

/// Softmax and the attention kernels of every table against f64 references.
#[test]
fn attention_kernels_match_f64_reference() {
    use half::f16;
    for table in tables() {
        let x = values(60, 77, 8.0);
        let mut got = x.clone();
        (table.softmax)(&mut got);
        let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let total: f64 = x.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        for (i, &v) in x.iter().enumerate() {
            let want = (f64::from(v) - max).exp() / total;
            assert!((f64::from(got[i]) - want).abs() <= 1e-6 * want + 1e-12, "{} softmax element {i}: {} vs {want}", table.isa, got[i]);
        }

        let (positions, stride, head_dim, offset) = (6, 96, 32, 64);
        let keys: Vec<f16> = values(61, positions * stride, 2.0).into_iter().map(f16::from_f32).collect();
        let q = values(62, head_dim, 1.0);
        let mut scores = vec![0.0; positions];
        (table.scores_f16)(&keys[offset..], stride, &q, &mut scores);
        let weights: Vec<f32> = (0..positions).map(|p| 0.1 + p as f32 * 0.05).collect();
        let mut mixed = vec![0.0; head_dim];
        (table.mix_f16)(&keys[offset..], stride, &weights, &mut mixed);
        for p in 0..positions {
            let key = &keys[offset + p * stride..offset + p * stride + head_dim];
            let want: f64 = key.iter().zip(&q).map(|(&k, &v)| f64::from(k.to_f32()) * f64::from(v)).sum();
            let scale: f64 = key.iter().zip(&q).map(|(&k, &v)| (f64::from(k.to_f32()) * f64::from(v)).abs()).sum();
            assert!((f64::from(scores[p]) - want).abs() <= 1e-6 * scale, "{} scores_f16 position {p}: {} vs {want}", table.isa, scores[p]);
        }
        for i in 0..head_dim {
            let want: f64 = (0..positions).map(|p| f64::from(weights[p]) * f64::from(keys[offset + p * stride + i].to_f32())).sum();
            let scale: f64 = (0..positions).map(|p| (f64::from(weights[p]) * f64::from(keys[offset + p * stride + i].to_f32())).abs()).sum();
            assert!((f64::from(mixed[i]) - want).abs() <= 1e-6 * scale, "{} mix_f16 element {i}: {} vs {want}", table.isa, mixed[i]);
        }
    }
}

#[test]
fn active_table_is_forced_isa() {
    let active = kernels::active().unwrap_or_else(|e| panic!("no kernel table: {e}"));
    match std::env::var("TINYLLM_ISA") {
        Ok(name) => assert_eq!(active.isa.name(), name.trim(), "TINYLLM_ISA={name} must select the active table"),
        Err(_) => assert_eq!(active.isa, kernels::detect(), "without TINYLLM_ISA the best detected table is active"),
    }
}

#[test]
fn threads_give_identical_results() {
    let pool = tinyllm::threads::ThreadPool::new(3);
    let table = kernels::active().unwrap();
    for format in QuantFormat::ALL {
        let qtype = QuantType { format, interleave: 4 };
        let (rows, cols) = if cfg!(miri) { (37, 96) } else { (203, 160) };
        let w = values(7, rows * cols, 1.0);
        let data = quantize_matrix(&w, rows, cols, qtype);
        let matrix = Matrix { data: TensorData::Quant { qtype, data: &data }, rows, cols };
        for n in [1, 3] {
            let x = values(8 + n as u64, n * cols, 1.0);
            let mut serial = vec![0.0; n * rows];
            let mut threaded = vec![f32::NAN; n * rows];
            matmul(table, &matrix, &x, &mut QuantizedInput::default(), n, &mut serial, &Serial);
            matmul(table, &matrix, &x, &mut QuantizedInput::default(), n, &mut threaded, &pool);
            assert_eq!(serial, threaded, "{qtype} n={n}");
        }
    }
}

#[test]
fn pool_runs_each_task_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = tinyllm::threads::ThreadPool::new(4);
    let counts: &[usize] = if cfg!(miri) { &[0, 1, 2, 7, 64] } else { &[0, 1, 2, 7, 64, 1000] };
    for &count in counts {
        let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
        pool.run(count, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "count {count}");
    }
}
