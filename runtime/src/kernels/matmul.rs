//! Matrix products over any weight type: the loops around the kernels of a [`Kernels`] table.

use alloc::vec::Vec;

use bytemuck::Pod;

use super::Kernels;
use crate::quant::{quantize_activations, quantize_activations_16, BlockQ16Act, BlockQ8Act, QuantFormat, QuantType, QK};
use crate::tensor::{Matrix, TensorData};

/// The quantized forms of one input to several matrices (query, key and value read the same
/// input; so do gate and up), made on first use and reused until [`QuantizedInput::reset`].
#[derive(Debug, Default, Clone)]
pub struct QuantizedInput {
    int8: Vec<BlockQ8Act>,
    int16: Vec<BlockQ16Act>,
    has_int8: bool,
    has_int16: bool,
    /// Blocks per activation row, padded to a multiple of four so that groups of 128 weights
    /// always find four activation blocks.
    stride: usize,
}

impl QuantizedInput {
    /// Forgets the quantized forms: the next matrix reads a new input.
    pub fn reset(&mut self) {
        self.has_int8 = false;
        self.has_int16 = false;
    }

    fn int8_rows(&mut self, x: &[f32], n: usize, cols: usize) -> &[BlockQ8Act] {
        if !self.has_int8 {
            self.stride = cols.div_ceil(4 * QK) * 4;
            quantize_rows(x, n, cols, self.stride, &mut self.int8, quantize_activations);
            self.has_int8 = true;
        }
        &self.int8
    }

    fn int16_rows(&mut self, x: &[f32], n: usize, cols: usize) -> &[BlockQ16Act] {
        if !self.has_int16 {
            self.stride = cols.div_ceil(4 * QK) * 4;
            quantize_rows(x, n, cols, self.stride, &mut self.int16, quantize_activations_16);
            self.has_int16 = true;
        }
        &self.int16
    }
}

fn quantize_rows<A: Pod + Default>(x: &[f32], n: usize, cols: usize, stride: usize, out: &mut Vec<A>, quantize: fn(&[f32], &mut [A])) {
    out.clear();
    out.resize(n * stride, A::default());
    for t in 0..n {
        quantize(&x[t * cols..(t + 1) * cols], &mut out[t * stride..(t + 1) * stride]);
    }
}

/// `out = x · wᵀ` for `n` rows of `x`: `out` is `n` × `w.rows`.
///
/// Float weights read `x`; quantized weights read the quantized form of `x` in `xq`, made
/// here on first use. The caller resets `xq` whenever `x` changes. `row_buffer` holds `w.cols`
/// values for bf16 rows.
pub fn matmul(kernels: &Kernels, w: &Matrix<'_>, x: &[f32], xq: &mut QuantizedInput, n: usize, out: &mut [f32], row_buffer: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    match w.data {
        TensorData::F32(data) => {
            for r in 0..rows {
                let row = &data[r * cols..(r + 1) * cols];
                for t in 0..n {
                    out[t * rows + r] = (kernels.dot_f32)(row, &x[t * cols..(t + 1) * cols]);
                }
            }
        }
        TensorData::F16(data) => {
            for r in 0..rows {
                let row = &data[r * cols..(r + 1) * cols];
                for t in 0..n {
                    out[t * rows + r] = (kernels.dot_f16)(row, &x[t * cols..(t + 1) * cols]);
                }
            }
        }
        TensorData::BF16(_) => {
            for r in 0..rows {
                w.row_to_f32(r, row_buffer);
                for t in 0..n {
                    out[t * rows + r] = (kernels.dot_f32)(&row_buffer[..cols], &x[t * cols..(t + 1) * cols]);
                }
            }
        }
        TensorData::Quant { qtype, data } => matmul_quant(kernels, qtype, data, rows, cols, x, xq, n, out),
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_quant(kernels: &Kernels, qtype: QuantType, data: &[u8], rows: usize, cols: usize, x: &[f32], xq: &mut QuantizedInput, n: usize, out: &mut [f32]) {
    let blocks = qtype.format.blocks_per_row(cols as u64) as usize;
    let shape = Shape { rows, blocks, interleave: qtype.interleave as usize };
    let k = kernels;
    match qtype.format {
        QuantFormat::Q8_0 => {
            let stride = cols.div_ceil(4 * QK) * 4;
            let acts = Acts { rows: xq.int16_rows(x, n, cols), stride };
            run(data, shape, acts, n, out, k.dot_q8_0, k.dot_q8_0_r4, None)
        }
        format => {
            let stride = cols.div_ceil(4 * QK) * 4;
            let acts = Acts { rows: xq.int8_rows(x, n, cols), stride };
            match format {
                QuantFormat::Q4_0 => run(data, shape, acts, n, out, k.dot_q4_0, k.dot_q4_0_r4, Some(k.dot_q4_0_r4x2)),
                QuantFormat::Q4_0G128 => run(data, shape, acts, n, out, k.dot_q4_0_g128, k.dot_q4_0_g128_r4, None),
                _ => run(data, shape, acts, n, out, k.dot_q4_1, k.dot_q4_1_r4, None),
            }
        }
    }
}

/// Quantized activation rows.
#[derive(Clone, Copy)]
struct Acts<'a, A> {
    rows: &'a [A],
    stride: usize,
}

impl<'a, A> Acts<'a, A> {
    fn row(&self, t: usize) -> &'a [A] {
        &self.rows[t * self.stride..(t + 1) * self.stride]
    }
}

#[derive(Clone, Copy)]
struct Shape {
    rows: usize,
    blocks: usize,
    interleave: usize,
}

type Dot<B, A> = fn(&[B], &[A]) -> f32;
type Dot4<B, A> = fn(&[B], &[A]) -> [f32; 4];
type Dot4x2<B, A> = fn(&[B], &[A], &[A]) -> [[f32; 4]; 2];

/// Runs the row kernels over a matrix: groups of four interleaved rows first (two tokens at a
/// time where a two-token kernel exists), then the plain rows after them.
#[allow(clippy::too_many_arguments)]
fn run<B: Pod, A>(data: &[u8], shape: Shape, xq: Acts<'_, A>, n: usize, out: &mut [f32], dot: Dot<B, A>, dot4: Dot4<B, A>, dot4x2: Option<Dot4x2<B, A>>) {
    let blocks: &[B] = bytemuck::cast_slice(data);
    let Shape { rows, blocks: nb, interleave } = shape;
    let interleaved = if interleave == 4 { rows - rows % 4 } else { 0 };
    for g in 0..interleaved / 4 {
        let w = &blocks[g * 4 * nb..(g + 1) * 4 * nb];
        let mut t = 0;
        if let Some(dot4x2) = dot4x2 {
            while t + 1 < n {
                let [a, b] = dot4x2(w, xq.row(t), xq.row(t + 1));
                out[t * rows + 4 * g..t * rows + 4 * g + 4].copy_from_slice(&a);
                out[(t + 1) * rows + 4 * g..(t + 1) * rows + 4 * g + 4].copy_from_slice(&b);
                t += 2;
            }
        }
        while t < n {
            let values = dot4(w, xq.row(t));
            out[t * rows + 4 * g..t * rows + 4 * g + 4].copy_from_slice(&values);
            t += 1;
        }
    }
    for r in interleaved..rows {
        let w = &blocks[r * nb..(r + 1) * nb];
        for t in 0..n {
            out[t * rows + r] = dot(w, xq.row(t));
        }
    }
}
