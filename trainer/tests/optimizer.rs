//! AdamW against a scalar f64 implementation of the update rule: the in-place CPU path (f32)
//! and the tensor path (f64 tensors take it), over several steps with clipping and weight decay.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use tinyllm_train::train::optimizer::{clip_scale, AdamW, AdamWConfig};

const CONFIG: AdamWConfig = AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };

/// Returns a reproducible pseudo-random sequence in [-1, 1).
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Scalar AdamW: the reference.
struct Reference {
    weights: Vec<Vec<f64>>,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    step: i32,
}

impl Reference {
    fn update(&mut self, grads: &[Vec<f64>], scale: f64, lr: f64, decays: &[bool]) {
        self.step += 1;
        let c1 = 1.0 - CONFIG.beta1.powi(self.step);
        let c2 = 1.0 - CONFIG.beta2.powi(self.step);
        for (p, grad) in grads.iter().enumerate() {
            for (i, &g) in grad.iter().enumerate() {
                let g = g * scale;
                self.m[p][i] = CONFIG.beta1 * self.m[p][i] + (1.0 - CONFIG.beta1) * g;
                self.v[p][i] = CONFIG.beta2 * self.v[p][i] + (1.0 - CONFIG.beta2) * g * g;
                let mut delta = (self.m[p][i] / c1) / ((self.v[p][i] / c2).sqrt() + CONFIG.eps);
                if decays[p] {
                    delta += CONFIG.weight_decay * self.weights[p][i];
                }
                self.weights[p][i] -= lr * delta;
            }
        }
    }
}

/// Runs three clipped updates with `dtype` tensors and returns the largest difference to the
/// reference, relative to the largest weight change.
fn run(dtype: DType) -> f64 {
    // 300 × 257 elements is above the size at which the CPU path splits across threads; the
    // 7 × 3 tensor stays on one thread. Only the matrix decays.
    let shapes = [(300usize, 257usize), (7, 3)];
    let decays = [true, false];
    let initial: Vec<Vec<f64>> = shapes.iter().enumerate().map(|(p, &(r, c))| values(p as u64, r * c)).collect();
    let params: Vec<(String, Var)> = shapes
        .iter()
        .enumerate()
        .map(|(p, &(r, c))| {
            let tensor = Tensor::from_vec(initial[p].clone(), (r, c), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            (format!("p{p}"), Var::from_tensor(&tensor).unwrap())
        })
        .collect();

    let mut optimizer = AdamW::new(CONFIG, &params).unwrap();
    // The starting weights, rounded to the tensor type.
    let initial: Vec<Vec<f64>> = params.iter().map(|(_, var)| var.as_tensor().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()).collect();
    let mut reference = Reference { weights: initial.clone(), m: initial.iter().map(|w| vec![0.0; w.len()]).collect(), v: initial.iter().map(|w| vec![0.0; w.len()]).collect(), step: 0 };

    for step in 0..3u64 {
        let raw: Vec<Vec<f64>> = initial.iter().enumerate().map(|(p, w)| values(100 + 10 * step + p as u64, w.len()).iter().map(|g| g * 3.0).collect()).collect();
        // Gradients rounded to the tensor type, so both sides see the same values.
        let mut grads = BTreeMap::new();
        let mut seen = Vec::new();
        for (p, &(r, c)) in shapes.iter().enumerate() {
            let grad = Tensor::from_vec(raw[p].clone(), (r, c), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            seen.push(grad.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap());
            grads.insert(format!("p{p}"), grad);
        }
        let (norm, scale) = clip_scale(&grads, 1.0).unwrap();
        let expected_norm = seen.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        assert!((norm - expected_norm).abs() <= 1e-9 * expected_norm, "norm {norm} against {expected_norm}");
        assert!(scale < 1.0, "gradients of norm {norm} should be clipped to 1");
        let lr = 1e-2 * (step + 1) as f64;
        optimizer.update(&params, &grads, scale, lr, |name, _| name == "p0").unwrap();
        reference.update(&seen, scale, lr, &decays);
    }

    let mut worst: f64 = 0.0;
    let mut largest_change: f64 = 0.0;
    for (p, (_, var)) in params.iter().enumerate() {
        let got = var.as_tensor().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (i, &g) in got.iter().enumerate() {
            worst = worst.max((g - reference.weights[p][i]).abs());
            largest_change = largest_change.max((reference.weights[p][i] - initial[p][i]).abs());
        }
    }
    assert!(largest_change > 1e-2, "the updates moved the weights by only {largest_change}");
    worst / largest_change
}

#[test]
fn cpu_in_place_update_matches_reference() {
    let error = run(DType::F32);
    assert!(error < 1e-5, "f32 in-place AdamW differs from the reference by {error} of the largest change");
}

#[test]
fn tensor_update_matches_reference() {
    let error = run(DType::F64);
    assert!(error < 1e-9, "f64 tensor AdamW differs from the reference by {error} of the largest change");
}
