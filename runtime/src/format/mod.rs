//! The `.tllm` file format: header, metadata, tokenizer section, tensor table and tensor data.
//!
//! docs/format.md is the normative description. This module holds the byte layout of the
//! header and the tensor table; [`metadata`] holds the JSON model description.

pub mod dtype;
pub mod header;
pub mod metadata;
pub mod table;
#[cfg(feature = "std")]
pub mod writer;

pub use dtype::DType;
pub use header::{Header, HEADER_SIZE, MAGIC, VERSION};
pub use metadata::{Architecture, LayerDims, Metadata, RopeLayout, RopeScaling, TokenizerInfo};
pub use table::TensorEntry;

/// Alignment of every tensor's data, in bytes, from the start of the file.
///
/// 64 bytes is one cache line on current x86-64 and ARM cores and covers every SIMD load width
/// the kernels use, so kernels read weights in place.
pub const TENSOR_ALIGNMENT: u64 = 64;

/// CRC-32 (IEEE 802.3 polynomial, as in zlib) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(bytes);
    hasher.finalize()
}
