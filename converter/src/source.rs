//! A model read from its source format, before it is written as `.tllm`.

use std::path::PathBuf;

use half::{bf16, f16};
use tinyllm::format::Metadata;
use tinyllm::quant::{interleave_rows, quantize_matrix, QuantFormat, QuantType};
use tinyllm::DType;

use crate::error::{ConvertError, Result};
use crate::gguf::GgufFile;

/// The location of a tensor's bytes in the source.
#[derive(Debug, Clone)]
pub enum Location {
    /// A tensor of a safetensors file: file index, byte range in the file, stored type.
    Safetensors {
        /// Index into the list of mapped files.
        file: usize,
        /// Byte range of the data in the file.
        range: std::ops::Range<usize>,
        /// Stored element type.
        dtype: DType,
    },
    /// A tensor of the GGUF file, by its index in the GGUF tensor table.
    Gguf {
        /// Index into the GGUF tensor list.
        index: usize,
    },
}

/// One tensor of the source model, under its `.tllm` name.
#[derive(Debug, Clone)]
pub struct SourceTensor {
    /// Name in the `.tllm` file, for example `layers.0.attn_q`.
    pub name: String,
    /// Name in the source file.
    pub source_name: String,
    /// Shape, outermost dimension first.
    pub shape: Vec<u64>,
    /// The source data type, as the source format names it.
    pub source_type: String,
    /// The location of the bytes.
    pub location: Location,
}

/// The files a source model's tensors live in.
pub enum Backing {
    /// Memory maps of one or more safetensors files.
    Safetensors(Vec<(PathBuf, memmap2::Mmap)>),
    /// A GGUF file.
    Gguf(Box<GgufFile>),
}

/// A model read from a Hugging Face directory or a GGUF file.
pub struct SourceModel {
    /// The input path (directory or file).
    pub path: PathBuf,
    /// The model description to write.
    pub metadata: Metadata,
    /// The Hugging Face `tokenizer.json` bytes.
    pub tokenizer_json: Vec<u8>,
    /// Tensors in the order they will be written.
    pub tensors: Vec<SourceTensor>,
    /// The mapped source files.
    pub backing: Backing,
}

impl SourceModel {
    /// Reads tensor `tensor` and returns its elements as f32. A NaN or infinite element is an
    /// error that names the tensor.
    pub fn load_f32(&self, tensor: &SourceTensor) -> Result<Vec<f32>> {
        let values = self.decode_f32(tensor)?;
        match values.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(ConvertError::NonFinite { path: self.path.clone(), name: tensor.source_name.clone(), index }),
            None => Ok(values),
        }
    }

    fn decode_f32(&self, tensor: &SourceTensor) -> Result<Vec<f32>> {
        match (&tensor.location, &self.backing) {
            (Location::Safetensors { file, range, dtype }, Backing::Safetensors(files)) => {
                let bytes = &files[*file].1[range.clone()];
                Ok(match dtype {
                    DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                    DType::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                    DType::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                    DType::Quant(_) => unreachable!("safetensors tensors are float types"),
                })
            }
            (Location::Gguf { index }, Backing::Gguf(gguf)) => {
                let info = &gguf.tensors()[*index];
                gguf.tensor_to_f32(info).map_err(|source| ConvertError::Gguf { path: self.path.clone(), source })
            }
            _ => unreachable!("a tensor location always matches its model's backing"),
        }
    }

    /// Returns the block format and raw blocks of a tensor stored in a GGUF block type that
    /// `.tllm` shares (Q8_0, Q4_0, Q4_1), or `None` for any other tensor.
    pub fn source_blocks(&self, tensor: &SourceTensor) -> Option<(QuantFormat, &[u8])> {
        let (Location::Gguf { index }, Backing::Gguf(gguf)) = (&tensor.location, &self.backing) else { return None };
        let info = &gguf.tensors()[*index];
        let format = match info.ggml_type {
            crate::gguf::GgmlType::Q8_0 => QuantFormat::Q8_0,
            crate::gguf::GgmlType::Q4_0 => QuantFormat::Q4_0,
            crate::gguf::GgmlType::Q4_1 => QuantFormat::Q4_1,
            _ => return None,
        };
        Some((format, gguf.tensor_data(info)))
    }

    /// Reads tensor `tensor` as little-endian bytes of `dtype`.
    ///
    /// Bytes already stored in `dtype` are copied unchanged, and GGUF blocks of the requested
    /// block format are copied without requantization (only their row order changes for an
    /// interleaved layout). Other float targets are converted with round-to-nearest-even and
    /// other quantized targets quantized with round-to-nearest.
    pub fn load_as(&self, tensor: &SourceTensor, dtype: DType) -> Result<Vec<u8>> {
        // Every element is decoded once, also for copies, so that NaN and infinite values are
        // found whatever the output type.
        let values = self.load_f32(tensor)?;
        if let (Location::Safetensors { file, range, dtype: stored }, Backing::Safetensors(files)) = (&tensor.location, &self.backing) {
            if *stored == dtype {
                return Ok(files[*file].1[range.clone()].to_vec());
            }
        }
        if let DType::Quant(qtype) = dtype {
            let [rows, cols] = tensor.shape[..] else {
                return Err(ConvertError::InvalidField {
                    path: self.path.clone(),
                    field: format!("tensor {}", tensor.source_name),
                    value: format!("{:?}", tensor.shape),
                    expected: format!("a matrix shape for quantized type {qtype}"),
                });
            };
            let (rows, cols) = (rows as usize, cols as usize);
            if let Some((format, blocks)) = self.source_blocks(tensor) {
                if format == qtype.format {
                    let per_row = format.blocks_per_row(cols as u64) as usize;
                    return Ok(interleave_rows(blocks, rows, per_row, format.block_bytes(), qtype.interleave as usize));
                }
            }
            return Ok(quantize_matrix(&values, rows, cols, qtype));
        }
        Ok(encode(&values, dtype))
    }
}

/// Returns the quantized type of a tensor that keeps its GGUF block format, if it has one
/// that `.tllm` shares.
pub fn source_quant_type(source: &SourceModel, tensor: &SourceTensor, interleave: u8) -> Option<QuantType> {
    source.source_blocks(tensor).map(|(format, _)| QuantType { format, interleave })
}

/// Encodes f32 values as little-endian bytes of `dtype`.
pub fn encode(values: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        DType::F16 => values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        DType::BF16 => values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect(),
        DType::Quant(_) => unreachable!("quantized types are written by load_as"),
    }
}
