//! Round-to-nearest quantization of weight rows and of activations.

use alloc::vec::Vec;

use super::block::{f32_to_f16, BlockQ16Act, BlockQ4_0G, BlockQ4_1, BlockQ8Act, BlockQ8_0, QK};
use super::{block_index, QuantFormat, QuantType};

/// Copies group `b` of `row` into a zero-padded buffer of `group` values.
fn padded_group(row: &[f32], b: usize, group: usize, buffer: &mut [f32; 128]) {
    let start = b * group;
    let end = (start + group).min(row.len());
    buffer[..group].fill(0.0);
    buffer[..end - start].copy_from_slice(&row[start..end]);
}

/// Quantizes one row to Q8_0: `d = max|x| / 127`, `q = round(x / d)`.
pub fn quantize_row_q8_0(row: &[f32], out: &mut Vec<BlockQ8_0>) {
    let mut buffer = [0.0f32; 128];
    for b in 0..row.len().div_ceil(QK) {
        padded_group(row, b, QK, &mut buffer);
        let x = &buffer[..QK];
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK];
        for (q, &v) in qs.iter_mut().zip(x) {
            *q = libm::roundf(v * inverse) as i8;
        }
        out.push(BlockQ8_0 { d: f32_to_f16(d), qs });
    }
}

/// Quantizes one row to symmetric Q4_0 with groups of `32 * S`: the value of largest
/// magnitude maps to -8, so `d = x_max / -8` and `q = clamp(round(x / d) + 8, 0, 15)`.
pub fn quantize_row_q4_0<const S: usize>(row: &[f32], out: &mut Vec<BlockQ4_0G<S>>) {
    let group = QK * S;
    let mut buffer = [0.0f32; 128];
    for b in 0..row.len().div_ceil(group) {
        padded_group(row, b, group, &mut buffer);
        let x = &buffer[..group];
        let extreme = x.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = extreme / -8.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [[0u8; QK / 2]; S];
        for (sub, bytes) in qs.iter_mut().enumerate() {
            let x = &x[sub * QK..(sub + 1) * QK];
            for j in 0..QK / 2 {
                let lo = (libm::roundf(x[j] * inverse) + 8.0).clamp(0.0, 15.0) as u8;
                let hi = (libm::roundf(x[j + QK / 2] * inverse) + 8.0).clamp(0.0, 15.0) as u8;
                bytes[j] = lo | (hi << 4);
            }
        }
        out.push(BlockQ4_0G { d: f32_to_f16(d), qs });
    }
}

/// Quantizes one row to Q4_1: `m = min(x)`, `d = (max(x) - m) / 15`,
/// `q = clamp(round((x - m) / d), 0, 15)`.
pub fn quantize_row_q4_1(row: &[f32], out: &mut Vec<BlockQ4_1>) {
    let mut buffer = [0.0f32; 128];
    for b in 0..row.len().div_ceil(QK) {
        padded_group(row, b, QK, &mut buffer);
        let x = &buffer[..QK];
        let min = x.iter().copied().fold(f32::INFINITY, f32::min);
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let d = (max - min) / 15.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0u8; QK / 2];
        for j in 0..QK / 2 {
            let lo = libm::roundf((x[j] - min) * inverse).clamp(0.0, 15.0) as u8;
            let hi = libm::roundf((x[j + QK / 2] - min) * inverse).clamp(0.0, 15.0) as u8;
            qs[j] = lo | (hi << 4);
        }
        out.push(BlockQ4_1 { d: f32_to_f16(d), m: f32_to_f16(min), qs });
    }
}

/// Quantizes a row-major `rows` × `cols` matrix to `qtype`, in its row layout.
pub fn quantize_matrix(values: &[f32], rows: usize, cols: usize, qtype: QuantType) -> Vec<u8> {
    let format = qtype.format;
    let blocks = format.blocks_per_row(cols as u64) as usize;
    let bytes = format.block_bytes();
    let mut plain: Vec<u8> = Vec::with_capacity(rows * blocks * bytes);
    for r in 0..rows {
        let row = &values[r * cols..(r + 1) * cols];
        match format {
            QuantFormat::Q8_0 => {
                let mut out = Vec::with_capacity(blocks);
                quantize_row_q8_0(row, &mut out);
                plain.extend_from_slice(bytemuck::cast_slice(&out));
            }
            QuantFormat::Q4_0 => {
                let mut out = Vec::with_capacity(blocks);
                quantize_row_q4_0::<1>(row, &mut out);
                plain.extend_from_slice(bytemuck::cast_slice(&out));
            }
            QuantFormat::Q4_0G128 => {
                let mut out = Vec::with_capacity(blocks);
                quantize_row_q4_0::<4>(row, &mut out);
                plain.extend_from_slice(bytemuck::cast_slice(&out));
            }
            QuantFormat::Q4_0G64 => {
                let mut out = Vec::with_capacity(blocks);
                quantize_row_q4_0::<2>(row, &mut out);
                plain.extend_from_slice(bytemuck::cast_slice(&out));
            }
            QuantFormat::Q4_1 => {
                let mut out = Vec::with_capacity(blocks);
                quantize_row_q4_1(row, &mut out);
                plain.extend_from_slice(bytemuck::cast_slice(&out));
            }
        }
    }
    interleave_rows(&plain, rows, blocks, bytes, qtype.interleave as usize)
}

/// Reorders plain rows of blocks into the layout of `interleave`.
pub fn interleave_rows(plain: &[u8], rows: usize, blocks: usize, bytes: usize, interleave: usize) -> Vec<u8> {
    if interleave <= 1 {
        return plain.to_vec();
    }
    let mut out = alloc::vec![0u8; plain.len()];
    for r in 0..rows {
        for b in 0..blocks {
            let from = (r * blocks + b) * bytes;
            let to = block_index(r, b, rows, blocks, interleave) * bytes;
            out[to..to + bytes].copy_from_slice(&plain[from..from + bytes]);
        }
    }
    out
}

/// Quantizes activations to int8 groups of 32: `d = max|x| / 127`, `q = round(x / d)`.
/// `out` holds `ceil(x.len() / 32)` blocks; a last partial group is padded with zeros.
pub fn quantize_activations(x: &[f32], out: &mut [BlockQ8Act]) {
    for (b, block) in out.iter_mut().enumerate() {
        let start = (b * QK).min(x.len());
        let end = (start + QK).min(x.len());
        let values = &x[start..end];
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // f32::max skips NaN, and a NaN quantizes to 0, so a non-finite activation would vanish
        // here. A NaN scale carries it into the output, where `Session::eval` reports it.
        let d = if values.iter().all(|v| v.is_finite()) { amax / 127.0 } else { f32::NAN };
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        block.qs = [0; QK];
        for (q, &v) in block.qs.iter_mut().zip(values) {
            *q = libm::roundf(v * inverse) as i8;
            sum += i32::from(*q);
        }
        block.d = d;
        block.sum = sum;
    }
}

/// Quantizes activations to int16 groups of 32: `d = max|x| / 32767`, `q = round(x / d)`.
/// `out` holds `ceil(x.len() / 32)` blocks or more; groups past the end of `x` are zeros.
pub fn quantize_activations_16(x: &[f32], out: &mut [BlockQ16Act]) {
    for (b, block) in out.iter_mut().enumerate() {
        let start = (b * QK).min(x.len());
        let end = (start + QK).min(x.len());
        let values = &x[start..end];
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // As in `quantize_activations`: a NaN scale keeps a non-finite activation visible.
        let d = if values.iter().all(|v| v.is_finite()) { amax / 32767.0 } else { f32::NAN };
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        block.qs = [0; QK];
        for (q, &v) in block.qs.iter_mut().zip(values) {
            *q = libm::roundf(v * inverse) as i16;
        }
        block.d = d;
    }
}
