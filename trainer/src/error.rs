//! Errors of the trainer: each names the value, where it came from and what to do next.

use std::path::{Path, PathBuf};

/// Result type of the trainer.
pub type Result<T> = std::result::Result<T, TrainError>;

/// A failure of loading, training, checkpointing or saving.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The run configuration is invalid.
    #[error("{path}: {message}; trainer/configs/ has a commented example of every key")]
    Config {
        /// The TOML file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A model could not be read by the converter library.
    #[error("loading model {path}: {source}")]
    Convert {
        /// The model directory or GGUF file.
        path: PathBuf,
        /// The converter's error.
        source: tinyllm_convert::ConvertError,
    },
    /// A model tensor is missing or has the wrong shape for the model's metadata.
    #[error("{path}: tensor {name} has shape {found:?}, expected {expected:?} from the model configuration; the weights and config.json disagree")]
    TensorShape {
        /// The model source.
        path: PathBuf,
        /// The tensor name (`.tllm` naming).
        name: String,
        /// The stored shape.
        found: Vec<usize>,
        /// The shape the metadata implies.
        expected: Vec<usize>,
    },
    /// A model tensor is missing.
    #[error("{path}: tensor {name} is missing; the model configuration requires it")]
    MissingTensor {
        /// The model source.
        path: PathBuf,
        /// The tensor name (`.tllm` naming).
        name: String,
    },
    /// Training data is invalid.
    #[error("{path}: {message}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// What is wrong and where (line, field).
        message: String,
    },
    /// A checkpoint is unreadable or belongs to another run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint folder.
        path: PathBuf,
        /// What is wrong and the fix.
        message: String,
    },
    /// The teacher top-k cache is corrupt or was made for other data.
    #[error("teacher top-k cache {path}: {message}")]
    TopkCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong and the fix.
        message: String,
    },
    /// Two models that must share a vocabulary or structure do not.
    #[error("{message}")]
    Incompatible {
        /// Which values differ and how to fix it.
        message: String,
    },
    /// A tensor operation failed inside candle.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> TrainError {
        TrainError::Io { path: path.to_path_buf(), source }
    }

    /// Builds a configuration error for `path`.
    pub fn config(path: &Path, message: impl Into<String>) -> TrainError {
        TrainError::Config { path: path.to_path_buf(), message: message.into() }
    }
}
