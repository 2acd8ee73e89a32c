//! Typed, zero-copy views of tensor data inside a model file.

use half::{bf16, f16};

use crate::quant::{dequantize_row, QuantType};

/// The elements of a tensor, viewed in place in the model bytes.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    /// binary32 elements.
    F32(&'a [f32]),
    /// binary16 elements.
    F16(&'a [f16]),
    /// bfloat16 elements.
    BF16(&'a [bf16]),
    /// Blocks of a quantized matrix, in the layout of `qtype`.
    Quant {
        /// Block format and row interleave.
        qtype: QuantType,
        /// The blocks' bytes.
        data: &'a [u8],
    },
}

impl<'a> TensorData<'a> {
    /// Whether the tensor is block-quantized.
    pub fn is_quantized(&self) -> bool {
        matches!(self, TensorData::Quant { .. })
    }

    /// Element `i` of a float tensor converted to f32.
    ///
    /// # Panics
    /// When `i` is out of range or the tensor is quantized; vectors (norm weights, biases) are
    /// float types, which the model checks at open.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            TensorData::F32(data) => data[i],
            TensorData::F16(data) => data[i].to_f32(),
            TensorData::BF16(data) => data[i].to_f32(),
            TensorData::Quant { .. } => panic!("element access to a quantized tensor"),
        }
    }

    /// Converts elements `start..start + out.len()` of a float tensor to f32 into `out`.
    pub fn copy_to_f32(&self, start: usize, out: &mut [f32]) {
        let end = start + out.len();
        match self {
            TensorData::F32(data) => out.copy_from_slice(&data[start..end]),
            TensorData::F16(data) => {
                for (o, v) in out.iter_mut().zip(&data[start..end]) {
                    *o = v.to_f32();
                }
            }
            TensorData::BF16(data) => {
                for (o, v) in out.iter_mut().zip(&data[start..end]) {
                    *o = v.to_f32();
                }
            }
            TensorData::Quant { .. } => panic!("element access to a quantized tensor"),
        }
    }
}

/// A row-major matrix of `rows` × `cols` elements (`[out, in]` for a projection weight).
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    /// The elements, `rows * cols` of them.
    pub data: TensorData<'a>,
    /// Number of rows (output features).
    pub rows: usize,
    /// Number of columns (input features).
    pub cols: usize,
}

impl<'a> Matrix<'a> {
    /// Converts (or dequantizes) row `row` to f32 into `out`, which holds `cols` elements.
    pub fn row_to_f32(&self, row: usize, out: &mut [f32]) {
        match self.data {
            TensorData::Quant { qtype, data } => dequantize_row(qtype, data, self.rows, self.cols, row, &mut out[..self.cols]),
            _ => self.data.copy_to_f32(row * self.cols, &mut out[..self.cols]),
        }
    }
}
