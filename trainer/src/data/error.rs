//! Errors of the data pipeline: reading, importing, rendering and writing conversations.

use std::path::PathBuf;

/// A problem with one field of a conversation, before the file and line are known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    /// JSON path of the field, such as `messages[2].role`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// Creates an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }

    /// Prefixes the field path with `parent`, so `role` inside `messages[2]` reads `messages[2].role`.
    pub fn within(mut self, parent: &str) -> FieldError {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Errors of the data pipeline.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}; check that the directory exists and is writable")]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line or file is not valid JSON.
    #[error("{path}:{line}: invalid JSON: {message}; each line must hold one JSON object")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line number (1 for a whole-file JSON document).
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A JSON value has the wrong shape.
    #[error("{path}:{line}: {error}")]
    Field {
        /// The file.
        path: PathBuf,
        /// 1-based line number (1 for a whole-file JSON document).
        line: usize,
        /// The field and the problem.
        error: FieldError,
    },
    /// The input is well-formed but cannot be used, such as an empty data set.
    #[error("{0}")]
    Invalid(String),
    /// The chat template failed or does not render conversations the way the mask needs.
    #[error("chat template: {0}")]
    Template(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

impl From<tinyllm::Error> for DataError {
    fn from(error: tinyllm::Error) -> Self {
        DataError::Tokenizer(error.to_string())
    }
}

/// Result of the data pipeline.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
