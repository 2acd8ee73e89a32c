//! Matrix products over any weight type: the loops around the kernels of a [`Kernels`] table.

use alloc::vec::Vec;

use bytemuck::Pod;

use super::{Dot4x2, Dot4x4, Kernels};
use crate::quant::{quantize_activations, quantize_activations_16, BlockQ16Act, BlockQ8Act, QuantFormat, QK};
use crate::tensor::{Matrix, TensorData};

/// The quantized forms of one input to several matrices, made on first use and reused until
/// [`QuantizedInput::reset`]. Query, key and value read the same input, and so do gate and up.
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

/// Runs independent tasks, on several threads or on the caller's.
pub trait Parallel: Sync {
    /// Number of threads tasks run on.
    fn threads(&self) -> usize;
    /// Runs `task(i)` for every `i` in `0..count` and returns when all have finished.
    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync));
}

/// Runs every task on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) {
        for i in 0..count {
            task(i);
        }
    }
}

#[cfg(feature = "std")]
impl Parallel for crate::threads::ThreadPool {
    fn threads(&self) -> usize {
        crate::threads::ThreadPool::threads(self)
    }

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) {
        crate::threads::ThreadPool::run(self, count, task)
    }
}

/// An output buffer that the tasks of one job write at once, each in its own elements: the
/// rows of a matrix product, or the heads of attention.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks reach the buffer only through `write` and `range`, whose contracts make the
// elements of each task disjoint, and the job that created it waits for all tasks before its
// borrow of the buffer ends.
unsafe impl Send for Output {}
// SAFETY: as above.
unsafe impl Sync for Output {}

impl Output {
    /// Wraps `buffer` for the tasks of one job.
    pub(crate) fn new(buffer: &mut [f32]) -> Output {
        Output { ptr: buffer.as_mut_ptr(), len: buffer.len() }
    }

    /// Writes `value` at `index`.
    ///
    /// # Safety
    /// No other task writes `index` while this one runs.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, index: usize, value: f32) {
        assert!(index < self.len, "output index {index} out of range {}", self.len);
        // SAFETY: in bounds (checked above) and not written concurrently (the caller's
        // contract).
        unsafe { *self.ptr.add(index) = value };
    }

    /// Returns the values `start..start + len`.
    ///
    /// # Safety
    /// No other task reaches any of these values while the returned slice lives.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "range {start}..{} outside a buffer of {}", start + len, self.len);
        // SAFETY: in bounds (checked above), and exclusive for the slice's life (the caller's
        // contract).
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Minimum rows per task: smaller tasks cost more in hand-off than they gain.
const MIN_ROWS_PER_TASK: usize = 16;

/// Splits `rows` into about four tasks per thread, each a multiple of four rows so that an
/// interleaved group of four never straddles two tasks.
fn row_ranges(rows: usize, threads: usize) -> Vec<(usize, usize)> {
    let tasks = if threads <= 1 { 1 } else { (threads * 4).min(rows / MIN_ROWS_PER_TASK).max(1) };
    let per_task = rows.div_ceil(tasks).div_ceil(4) * 4;
    let mut ranges = Vec::with_capacity(tasks);
    let mut start = 0;
    while start < rows {
        let end = (start + per_task).min(rows);
        ranges.push((start, end));
        start = end;
    }
    ranges
}

/// `out = x · wᵀ` for `n` rows of `x`: `out` is `n` × `w.rows`. Output rows are split into
/// tasks that `parallel` runs.
///
/// Float weights read `x`; quantized weights read the quantized form of `x` in `xq`, made
/// here on first use. The caller resets `xq` whenever `x` changes.
#[allow(clippy::too_many_arguments)]
pub fn matmul(kernels: &Kernels, w: &Matrix<'_>, x: &[f32], xq: &mut QuantizedInput, n: usize, out: &mut [f32], parallel: &dyn Parallel) {
    let (rows, cols) = (w.rows, w.cols);
    assert!(out.len() >= n * rows && x.len() >= n * cols, "matmul: output or input shorter than its shape");
    let output = Output::new(&mut out[..n * rows]);
    let ranges = row_ranges(rows, parallel.threads());
    let k = kernels;
    match w.data {
        TensorData::F32(data) => parallel.run(ranges.len(), &|i| {
            let (r0, r1) = ranges[i];
            for r in r0..r1 {
                let row = &data[r * cols..(r + 1) * cols];
                for t in 0..n {
                    // SAFETY: this task owns rows r0..r1, so no other task writes this element.
                    unsafe { output.write(t * rows + r, (k.dot_f32)(row, &x[t * cols..(t + 1) * cols])) };
                }
            }
        }),
        TensorData::F16(data) => parallel.run(ranges.len(), &|i| {
            let (r0, r1) = ranges[i];
            for r in r0..r1 {
                let row = &data[r * cols..(r + 1) * cols];
                for t in 0..n {
                    // SAFETY: this task owns rows r0..r1, so no other task writes this element.
                    unsafe { output.write(t * rows + r, (k.dot_f16)(row, &x[t * cols..(t + 1) * cols])) };
                }
            }
        }),
        TensorData::BF16(_) => parallel.run(ranges.len(), &|i| {
            let (r0, r1) = ranges[i];
            let mut row = alloc::vec![0.0f32; cols];
            for r in r0..r1 {
                w.row_to_f32(r, &mut row);
                for t in 0..n {
                    // SAFETY: this task owns rows r0..r1, so no other task writes this element.
                    unsafe { output.write(t * rows + r, (k.dot_f32)(&row, &x[t * cols..(t + 1) * cols])) };
                }
            }
        }),
        TensorData::Quant { qtype, data } => {
            let blocks = qtype.format.blocks_per_row(cols as u64) as usize;
            let shape = Shape { rows, blocks, interleave: qtype.interleave as usize };
            let stride = cols.div_ceil(4 * QK) * 4;
            match qtype.format {
                QuantFormat::Q8_0 => {
                    let acts = Acts { rows: xq.int16_rows(x, n, cols), stride };
                    parallel.run(ranges.len(), &|i| run(data, shape, ranges[i], acts, n, output, k.dot_q8_0, k.dot_q8_0_r4, None, k.dot_q8_0_r4x4));
                }
                format => {
                    let acts = Acts { rows: xq.int8_rows(x, n, cols), stride };
                    parallel.run(ranges.len(), &|i| match format {
                        QuantFormat::Q4_0 => run(data, shape, ranges[i], acts, n, output, k.dot_q4_0, k.dot_q4_0_r4, Some(k.dot_q4_0_r4x2), k.dot_q4_0_r4x4),
                        QuantFormat::Q4_0G128 => run(data, shape, ranges[i], acts, n, output, k.dot_q4_0_g128, k.dot_q4_0_g128_r4, None, k.dot_q4_0_g128_r4x4),
                        QuantFormat::Q4_0G64 => run(data, shape, ranges[i], acts, n, output, k.dot_q4_0_g64, k.dot_q4_0_g64_r4, None, k.dot_q4_0_g64_r4x4),
                        _ => run(data, shape, ranges[i], acts, n, output, k.dot_q4_1, k.dot_q4_1_r4, None, k.dot_q4_1_r4x4),
                    });
                }
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

/// Tokens per tile of prompt processing: the activation rows of one tile (at most about
/// 64 · 4864 · 2 bytes for a wide FFN input in int16) stay in L2 while every weight group of
/// the task meets them.
const TOKEN_TILE: usize = 64;

/// Runs the row kernels over output rows `r0..r1` (`r0` a multiple of four). Tokens go in
/// tiles of [`TOKEN_TILE`]; inside a tile, each group of four interleaved rows meets four
/// tokens at a time, then two where a two-token kernel exists, then one. The plain rows after
/// the last full group run one token at a time.
#[allow(clippy::too_many_arguments)]
fn run<B: Pod, A: Sync>(
    data: &[u8],
    shape: Shape,
    (r0, r1): (usize, usize),
    xq: Acts<'_, A>,
    n: usize,
    out: Output,
    dot: Dot<B, A>,
    dot4: Dot4<B, A>,
    dot4x2: Option<Dot4x2<B, A>>,
    dot4x4: Dot4x4<B, A>,
) {
    let blocks: &[B] = bytemuck::cast_slice(data);
    let Shape { rows, blocks: nb, interleave } = shape;
    let interleaved = if interleave == 4 { rows - rows % 4 } else { 0 };
    let write4 = |t: usize, g: usize, values: [f32; 4]| {
        for (j, value) in values.into_iter().enumerate() {
            // SAFETY: this task owns rows r0..r1, which contain group g's rows.
            unsafe { out.write(t * rows + 4 * g + j, value) };
        }
    };
    for tile in (0..n).step_by(TOKEN_TILE) {
        let tile_end = (tile + TOKEN_TILE).min(n);
        for g in r0 / 4..(r1.min(interleaved)).div_ceil(4) {
            let w = &blocks[g * 4 * nb..(g + 1) * 4 * nb];
            let mut t = tile;
            while t + 4 <= tile_end {
                let values = dot4x4(w, [xq.row(t), xq.row(t + 1), xq.row(t + 2), xq.row(t + 3)]);
                for (i, v) in values.into_iter().enumerate() {
                    write4(t + i, g, v);
                }
                t += 4;
            }
            if let Some(dot4x2) = dot4x2 {
                while t + 1 < tile_end {
                    let [a, b] = dot4x2(w, xq.row(t), xq.row(t + 1));
                    write4(t, g, a);
                    write4(t + 1, g, b);
                    t += 2;
                }
            }
            while t < tile_end {
                write4(t, g, dot4(w, xq.row(t)));
                t += 1;
            }
        }
    }
    for r in r0.max(interleaved)..r1 {
        let w = &blocks[r * nb..(r + 1) * nb];
        for t in 0..n {
            // SAFETY: this task owns rows r0..r1.
            unsafe { out.write(t * rows + r, dot(w, xq.row(t))) };
        }
    }
}
