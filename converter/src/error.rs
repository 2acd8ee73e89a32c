//! The error type of the converter.

use std::path::PathBuf;

use crate::gguf::GgufError;

/// A conversion failure. Each variant names the file, the field or tensor, and the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {message}")]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A required field is absent from a configuration file.
    #[error("{path}: missing field \"{field}\"; add it, or convert the model directory saved by transformers")]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: String,
    },
    /// A field has a value the converter cannot use.
    #[error("{path}: invalid value {value} for \"{field}\": expected {expected}")]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: String,
        /// The value found.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// The model architecture is not one tinyllm runs.
    #[error("{path}: unknown architecture \"{name}\"; supported: llama, qwen2, qwen3")]
    UnknownArchitecture {
        /// The file.
        path: PathBuf,
        /// The architecture name found.
        name: String,
    },
    /// A safetensors file is malformed.
    #[error("{path}: invalid safetensors file: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A source tensor has no place in a tinyllm model.
    #[error("{path}: unexpected tensor \"{name}\": the architecture has no such weight; the checkpoint may belong to another architecture")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A source tensor has a data type the converter does not read.
    #[error("{path}: tensor \"{name}\" has data type {dtype}; supported: {supported}")]
    UnsupportedTensorType {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The data type found.
        dtype: String,
        /// The data types accepted.
        supported: String,
    },
    /// A source tensor holds a NaN or infinite value, which no quantization or inference can
    /// use.
    #[error("{path}: tensor \"{name}\" holds a NaN or infinite value at element {index}; the checkpoint is damaged or was saved after training diverged")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor name in the source.
        name: String,
        /// Index of the first such element.
        index: usize,
    },
    /// A GGUF file could not be read.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: GgufError,
    },
    /// The assembled model failed the runtime's own checks (missing tensor, shape mismatch).
    #[error("{path}: {source}")]
    Model {
        /// The input the model came from.
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: tinyllm::Error,
    },
}

/// Result alias of the converter.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

impl ConvertError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io { path: path.into(), source }
    }
}
