//! AdamW on the CPU in place. It makes one pass over each of the first moment, the second
//! moment and the weights, split across threads. The tensor path makes a dozen candle
//! operations that each allocate a tensor the size of the parameter and run on one thread.
//! The arithmetic per element is that of the tensor path in `optimizer.rs`, in f32.

use candle_core::{CpuStorage, DType, Device, InplaceOp2, InplaceOp3, Layout, Tensor};

/// Elements below which an update runs on the calling thread.
const MIN_PARALLEL: usize = 1 << 16;

/// Returns whether the in-place path applies: f32 tensors on the CPU.
pub fn applies(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32 && matches!(t.device(), Device::Cpu))
}

fn threads(len: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min(len / MIN_PARALLEL).max(1)
}

/// Runs `f` over matching chunks of `out` and `inputs`, on up to one thread per CPU.
fn for_chunks<const N: usize>(out: &mut [f32], inputs: [&[f32]; N], f: impl Fn(&mut [f32], [&[f32]; N]) + Sync) {
    let threads = threads(out.len());
    if threads == 1 {
        f(out, inputs);
        return;
    }
    let chunk = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (index, out_chunk) in out.chunks_mut(chunk).enumerate() {
            let start = index * chunk;
            let end = start + out_chunk.len();
            let parts = inputs.map(|input| &input[start..end]);
            let f = &f;
            scope.spawn(move || f(out_chunk, parts));
        }
    });
}

fn offsets(layout: &Layout, what: &str) -> candle_core::Result<(usize, usize)> {
    layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("AdamW: the {what} is not contiguous")))
}

fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let (start, end) = offsets(layout, what)?;
    match storage {
        CpuStorage::F32(data) => Ok(&data[start..end]),
        _ => Err(candle_core::Error::Msg(format!("AdamW: the {what} is not f32"))),
    }
}

fn f32_slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, what: &str) -> candle_core::Result<&'a mut [f32]> {
    let (start, end) = offsets(layout, what)?;
    match storage {
        CpuStorage::F32(data) => Ok(&mut data[start..end]),
        _ => Err(candle_core::Error::Msg(format!("AdamW: the {what} is not f32"))),
    }
}

fn same_len(a: usize, b: usize, what: &str) -> candle_core::Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(candle_core::Error::Msg(format!("AdamW: the {what} has {b} elements where the moment has {a}")))
    }
}

/// `moment ← β·moment + (1 − β)·(s·g)`, or with `(s·g)²` for the second moment.
pub struct MomentUpdate {
    /// Decay rate β.
    pub beta: f32,
    /// Gradient scale s (global-norm clipping).
    pub grad_scale: f32,
    /// Whether this is the second moment (squared gradient).
    pub squared: bool,
}

impl InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, moment: &mut CpuStorage, moment_layout: &Layout, grad: &CpuStorage, grad_layout: &Layout) -> candle_core::Result<()> {
        let moment = f32_slice_mut(moment, moment_layout, "moment")?;
        let grad = f32_slice(grad, grad_layout, "gradient")?;
        same_len(moment.len(), grad.len(), "gradient")?;
        let (beta, rest, scale, squared) = (self.beta, 1.0 - self.beta, self.grad_scale, self.squared);
        for_chunks(moment, [grad], |m, [g]| {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = g * scale;
                let term = if squared { g * g } else { g };
                *m = *m * beta + term * rest;
            }
        });
        Ok(())
    }
}

/// `w ← w − lr·(m̂ / (√v̂ + ε) + λ·w)` with the bias-corrected moments m̂ = m / c₁, v̂ = v / c₂.
pub struct WeightUpdate {
    /// Learning rate.
    pub lr: f32,
    /// Bias corrections c₁ and c₂.
    pub correction1: f32,
    pub correction2: f32,
    /// ε added to the root of the second moment.
    pub eps: f32,
    /// Decoupled weight decay λ (0 for parameters without decay).
    pub weight_decay: f32,
}

impl InplaceOp3 for WeightUpdate {
    fn name(&self) -> &'static str {
        "adamw-weight"
    }

    fn cpu_fwd(&self, weight: &mut CpuStorage, weight_layout: &Layout, m: &CpuStorage, m_layout: &Layout, v: &CpuStorage, v_layout: &Layout) -> candle_core::Result<()> {
        let weight = f32_slice_mut(weight, weight_layout, "weight")?;
        let m = f32_slice(m, m_layout, "first moment")?;
        let v = f32_slice(v, v_layout, "second moment")?;
        same_len(weight.len(), m.len(), "first moment")?;
        same_len(weight.len(), v.len(), "second moment")?;
        let WeightUpdate { lr, correction1, correction2, eps, weight_decay } = *self;
        for_chunks(weight, [m, v], |w, [m, v]| {
            for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                let mut delta = (m / correction1) / ((v / correction2).sqrt() + eps);
                if weight_decay > 0.0 {
                    delta += *w * weight_decay;
                }
                *w -= delta * lr;
            }
        });
        Ok(())
    }
}

/// Computes the sum of squares of a CPU f32 tensor in f64, or returns `None` for other tensors.
pub fn sum_squares(tensor: &Tensor) -> Option<f64> {
    if !applies(&[tensor]) {
        return None;
    }
    let (storage, layout) = tensor.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { return None };
    let data = f32_slice(cpu, layout, "gradient").ok()?;
    // Partial sums over fixed blocks, added in order: the same result on any number of threads.
    let blocks: Vec<&[f32]> = data.chunks(MIN_PARALLEL).collect();
    let partial = |group: &[&[f32]]| group.iter().map(|block| block.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>()).collect::<Vec<f64>>();
    let threads = threads(data.len());
    let partials: Vec<f64> = if threads == 1 {
        partial(&blocks)
    } else {
        let per_thread = blocks.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = blocks.chunks(per_thread).map(|group| scope.spawn(move || partial(group))).collect();
            handles.into_iter().flat_map(|h| h.join().expect("a sum-of-squares thread panicked")).collect()
        })
    };
    Some(partials.iter().sum())
}
