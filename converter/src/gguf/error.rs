//! Errors raised while reading a GGUF file, dequantizing its tensors or converting its tokenizer.

use std::path::PathBuf;

/// An error from the GGUF reader, the dequantizer or the tokenizer conversion.
///
/// Each variant names the byte offset, metadata key or tensor involved and the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened or memory-mapped.
    #[error("failed to open or map GGUF file {path}: {source}")]
    Io {
        /// Path passed to [`GgufFile::open`](super::GgufFile::open).
        path: PathBuf,
        /// Error from the operating system.
        source: std::io::Error,
    },

    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: the first 4 bytes are {found:02x?}, expected \"GGUF\" (47 47 55 46)"
    )]
    InvalidMagic {
        /// First bytes of the file (fewer than 4 when the file is shorter).
        found: Vec<u8>,
    },

    /// The header carries a version this reader does not parse.
    #[error(
        "GGUF version {version} is not supported: only versions 2 and 3 can be read; \
         convert the model again with a current llama.cpp"
    )]
    UnsupportedVersion {
        /// Version field of the header.
        version: u32,
    },

    /// The version field reads as 2 or 3 only after a byte swap, so the file is big-endian.
    #[error(
        "big-endian GGUF files are not supported (version field bytes {bytes:02x?}); \
         convert the model again for a little-endian target"
    )]
    BigEndian {
        /// Raw bytes of the version field.
        bytes: [u8; 4],
    },

    /// The file ended before a field could be read.
    #[error(
        "GGUF file ends early: reading {field} at byte offset {offset} needs {needed} bytes, \
         but only {available} remain, so the file is truncated or a length before it is corrupt"
    )]
    Truncated {
        /// The field being read.
        field: String,
        /// Byte offset of the field.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file at `offset`.
        available: u64,
    },

    /// A count (tensors, metadata entries, array elements) exceeds what the rest of the file can hold.
    #[error(
        "{field} at byte offset {offset} is {count}, but the remaining {available} bytes can hold \
         at most {max}, so the file is corrupt"
    )]
    CountTooLarge {
        /// The count field being read.
        field: String,
        /// Byte offset of the count field.
        offset: u64,
        /// Value of the count field.
        count: u64,
        /// Largest count the remaining bytes could hold.
        max: u64,
        /// Bytes left in the file after the count field.
        available: u64,
    },

    /// A string is not valid UTF-8.
    #[error("{field} at byte offset {offset} is not valid UTF-8: {source}")]
    InvalidUtf8 {
        /// The string being read.
        field: String,
        /// Byte offset of the string bytes.
        offset: u64,
        /// Decoding error, with the position of the first invalid byte.
        source: std::str::Utf8Error,
    },

    /// A metadata value type id is not one of the 13 GGUF value types.
    #[error(
        "metadata key `{key}` has value type id {type_id} at byte offset {offset}; \
         valid ids are 0 to 12"
    )]
    InvalidValueType {
        /// Metadata key.
        key: String,
        /// Value type id found.
        type_id: u32,
        /// Byte offset of the type id.
        offset: u64,
    },

    /// A boolean metadata value is neither 0 nor 1.
    #[error(
        "metadata key `{key}` has boolean byte {value} at byte offset {offset}; expected 0 or 1"
    )]
    InvalidBool {
        /// Metadata key.
        key: String,
        /// Byte found.
        value: u8,
        /// Byte offset of the value.
        offset: u64,
    },

    /// Arrays are nested deeper than the reader allows.
    #[error(
        "metadata key `{key}` nests arrays deeper than {max_depth} levels at byte offset {offset}"
    )]
    ArrayTooDeep {
        /// Metadata key.
        key: String,
        /// Maximum nesting depth.
        max_depth: usize,
        /// Byte offset of the array that exceeds the depth.
        offset: u64,
    },

    /// The same metadata key appears twice.
    #[error("metadata key `{key}` appears twice (second time at byte offset {offset})")]
    DuplicateKey {
        /// Metadata key.
        key: String,
        /// Byte offset of the second occurrence.
        offset: u64,
    },

    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {value}; it must be a nonzero power of two such as 32")]
    InvalidAlignment {
        /// Alignment found.
        value: u64,
    },

    /// A metadata key that the caller requires is absent.
    #[error("metadata key `{key}` is missing")]
    MissingKey {
        /// Metadata key.
        key: String,
    },

    /// A metadata value has a type the caller cannot use.
    #[error("metadata key `{key}` has type {found}, expected {expected}")]
    WrongType {
        /// Metadata key.
        key: String,
        /// Type or types the caller accepts.
        expected: &'static str,
        /// Type found in the file.
        found: String,
    },

    /// An integer metadata value does not fit the requested type.
    #[error("metadata key `{key}` has value {value}, which does not fit in {target}")]
    ValueOutOfRange {
        /// Metadata key.
        key: String,
        /// Value found, printed in decimal.
        value: String,
        /// Requested integer type.
        target: &'static str,
    },

    /// A tensor name appears twice.
    #[error("tensor `{name}` appears twice in the tensor table")]
    DuplicateTensor {
        /// Tensor name.
        name: String,
    },

    /// A tensor has more dimensions than ggml supports.
    #[error("tensor `{tensor}` has {n_dims} dimensions; ggml tensors have at most {max}")]
    TooManyDims {
        /// Tensor name.
        tensor: String,
        /// Dimension count found.
        n_dims: u32,
        /// Maximum dimension count.
        max: u32,
    },

    /// A tensor's element count does not fit in i64 or its byte size does not fit in u64.
    #[error("tensor `{tensor}` has dimensions {dims:?}, whose element count or byte size overflows 64 bits")]
    ShapeOverflow {
        /// Tensor name.
        tensor: String,
        /// Dimensions, fastest-varying first.
        dims: Vec<u64>,
    },

    /// A tensor type id is not a ggml type this reader knows the block size of.
    #[error(
        "tensor `{tensor}` has ggml type id {type_id}, which this reader does not know; \
         its size cannot be checked, so the file cannot be read"
    )]
    UnknownTensorType {
        /// Tensor name.
        tensor: String,
        /// Type id found.
        type_id: u32,
    },

    /// A tensor's row length is not a whole number of quantization blocks.
    #[error(
        "tensor `{tensor}` of type {ggml_type} has row length {row_len}, \
         which is not a multiple of the block size {block_size}"
    )]
    PartialBlock {
        /// Tensor name.
        tensor: String,
        /// ggml type name.
        ggml_type: &'static str,
        /// First dimension.
        row_len: u64,
        /// Elements per block of the type.
        block_size: u64,
    },

    /// A tensor's data offset is not a multiple of the file alignment.
    #[error("tensor `{tensor}` has data offset {offset}, which is not a multiple of the alignment {alignment}")]
    MisalignedOffset {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the start of the data section.
        offset: u64,
        /// File alignment.
        alignment: u64,
    },

    /// A tensor's data extends past the end of the file.
    #[error(
        "tensor `{tensor}` needs bytes {offset}..{end} of the data section, \
         but the data section holds {data_len} bytes; the file is truncated or corrupt"
    )]
    TensorOutOfBounds {
        /// Tensor name.
        tensor: String,
        /// Offset relative to the start of the data section.
        offset: u64,
        /// End offset relative to the start of the data section, saturated at `u64::MAX`.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },

    /// Two tensors share bytes of the data section.
    #[error("tensors `{first}` and `{second}` overlap in the data section at offset {offset}")]
    OverlappingTensors {
        /// Tensor that starts first.
        first: String,
        /// Tensor that starts inside the first one.
        second: String,
        /// Start of `second`, relative to the start of the data section.
        offset: u64,
    },

    /// The tensor passed in does not belong to this file.
    #[error("tensor `{tensor}` does not match this file's tensor table; pass a TensorInfo returned by this GgufFile")]
    ForeignTensor {
        /// Tensor name.
        tensor: String,
    },

    /// Dequantization is not implemented for the tensor's type.
    #[error(
        "tensor `{tensor}` has type {ggml_type}; only F32, F16, BF16, Q8_0, Q4_0 and Q4_1 \
         tensors can be converted to f32"
    )]
    UnsupportedDequant {
        /// Tensor name.
        tensor: String,
        /// ggml type name.
        ggml_type: String,
    },

    /// Tensor data passed to the dequantizer is not a whole number of blocks.
    #[error(
        "data of tensor `{tensor}` ({ggml_type}) is {len} bytes, \
         which is not a multiple of the {block_bytes}-byte block"
    )]
    InvalidDataLength {
        /// Tensor name.
        tensor: String,
        /// ggml type name.
        ggml_type: &'static str,
        /// Length of the data in bytes.
        len: u64,
        /// Bytes per block of the type.
        block_bytes: u64,
    },

    /// The tokenizer model named by `tokenizer.ggml.model` cannot be converted.
    #[error(
        "tokenizer.ggml.model is `{model}`; only `gpt2` (byte-level BPE) can be converted \
         to tokenizer.json"
    )]
    UnsupportedTokenizerModel {
        /// Value of `tokenizer.ggml.model`.
        model: String,
    },

    /// The pre-tokenizer named by `tokenizer.ggml.pre` is not known.
    #[error(
        "tokenizer.ggml.pre is `{pre}`, which has no known pre-tokenizer; supported values are {supported}"
    )]
    UnsupportedPreTokenizer {
        /// Value of `tokenizer.ggml.pre`.
        pre: String,
        /// Comma-separated list of supported values.
        supported: &'static str,
    },

    /// Tokenizer metadata is inconsistent.
    #[error("invalid tokenizer metadata in `{key}`: {reason}")]
    InvalidTokenizer {
        /// Metadata key.
        key: String,
        /// Description of the problem, with the offending value.
        reason: String,
    },

    /// The generated tokenizer.json could not be serialized.
    #[error("failed to serialize tokenizer.json: {0}")]
    Json(#[from] serde_json::Error),
}
