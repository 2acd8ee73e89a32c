//! The error type of the runtime library.

use alloc::string::String;
use core::fmt;

/// The kind of failure, with the offending values.
///
/// Every variant names the field or tensor involved and the value found, so a message can be
/// acted on without a debugger. New variants may be added in minor releases.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file does not start with the `.tllm` magic bytes.
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The format version is newer (or older) than this runtime reads.
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this runtime reads.
        supported: u32,
    },
    /// The file ends before a structure that the header or table announces.
    Truncated {
        /// The structure being read.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// An offset or length points outside the file or its section.
    OutOfBounds {
        /// The section or tensor the range belongs to.
        what: String,
        /// Start offset in bytes.
        offset: u64,
        /// Length in bytes.
        length: u64,
        /// Size of the file or section it must fit in.
        limit: u64,
    },
    /// A tensor's data does not start on the required alignment.
    Misaligned {
        /// The tensor name.
        tensor: String,
        /// The absolute offset or address found.
        offset: u64,
        /// The alignment required, in bytes.
        alignment: u64,
    },
    /// The metadata checksum or a tensor checksum does not match the stored one.
    ChecksumMismatch {
        /// `metadata` or the tensor name.
        what: String,
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum computed over the bytes.
        computed: u32,
    },
    /// The metadata section is not valid JSON for this format version.
    InvalidMetadata {
        /// The parser's message.
        message: String,
    },
    /// A metadata value is out of its valid range or inconsistent with another one.
    InvalidValue {
        /// The field, for example `layers[3].n_kv_heads`.
        field: String,
        /// The value found, as text.
        value: String,
        /// The condition the value must satisfy.
        expected: String,
    },
    /// The architecture name is not one this runtime implements.
    UnknownArchitecture {
        /// The name in the metadata.
        name: String,
    },
    /// A tensor the architecture needs is not in the tensor table.
    MissingTensor {
        /// The tensor name.
        name: String,
    },
    /// A tensor's shape disagrees with the model dimensions.
    ShapeMismatch {
        /// The tensor name.
        tensor: String,
        /// The shape stored in the table.
        found: alloc::vec::Vec<u64>,
        /// The shape the metadata implies.
        expected: alloc::vec::Vec<u64>,
    },
    /// A tensor's data type cannot be used where it is.
    UnsupportedDtype {
        /// The tensor name.
        tensor: String,
        /// The data type code or name found.
        dtype: String,
    },
    /// A token id is not in the vocabulary.
    InvalidToken {
        /// The token id.
        token: u32,
        /// The vocabulary size.
        vocab_size: u32,
    },
    /// The tokens would not fit in the session's context.
    ContextFull {
        /// Tokens already in the KV cache.
        used: usize,
        /// Tokens requested now.
        requested: usize,
        /// The context length of the session.
        context: usize,
    },
    /// A tensor or the logits hold a NaN or infinite value.
    NonFinite {
        /// What holds it, for example `tensor layers.0.attn_q` or `logits`.
        what: String,
        /// Index of the first such element (within the tensor, or the token position).
        index: u64,
    },
    /// The tokenizer or chat template failed.
    Tokenizer {
        /// The underlying message.
        message: String,
    },
    /// Reading or mapping the file failed.
    Io {
        /// The underlying message.
        message: String,
    },
}

/// An error from the runtime library: a kind plus the file it concerns, when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    kind: ErrorKind,
    path: Option<String>,
}

impl Error {
    /// Creates an error of the given kind that concerns no particular file.
    pub fn new(kind: ErrorKind) -> Self {
        Error { kind, path: None }
    }

    /// Attaches the path of the file the error concerns.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Returns the kind of failure.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Returns the file the error concerns, when known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

/// Result alias of the runtime library.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            BadMagic { found } => {
                let text: alloc::string::String = found.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect();
                let hex: alloc::vec::Vec<alloc::string::String> = found.iter().map(|b| alloc::format!("0x{b:02x}")).collect();
                write!(f, "not a .tllm file: its magic bytes are \"{text}\" ({}), not \"TLLM\"; convert the model with tinyllm-convert", hex.join(" "))
            }
            UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found} is not supported (this runtime reads version {supported}); reconvert the model with a matching tinyllm-convert or upgrade tinyllm"
            ),
            Truncated { what, needed, available } => write!(
                f,
                "file is truncated: {what} needs {needed} bytes but only {available} are present; the file is incomplete, copy or convert it again"
            ),
            OutOfBounds { what, offset, length, limit } => write!(
                f,
                "{what}: range at offset {offset} with length {length} ends outside its limit of {limit} bytes; the file is corrupt or truncated"
            ),
            Misaligned { tensor, offset, alignment } => write!(
                f,
                "tensor {tensor}: data at offset {offset} is not aligned to {alignment} bytes; reconvert the file, or load it from a buffer aligned to 64 bytes"
            ),
            ChecksumMismatch { what, stored, computed } => write!(
                f,
                "{what}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x}); the file is corrupt, copy or convert it again"
            ),
            InvalidMetadata { message } => write!(f, "invalid metadata: {message}"),
            InvalidValue { field, value, expected } => {
                write!(f, "invalid value {value} for {field}: expected {expected}")
            }
            UnknownArchitecture { name } => write!(
                f,
                "unknown architecture \"{name}\"; supported: llama, qwen2, qwen3"
            ),
            MissingTensor { name } => write!(f, "missing tensor {name}"),
            ShapeMismatch { tensor, found, expected } => write!(
                f,
                "tensor {tensor}: shape {found:?} disagrees with the model dimensions, which imply {expected:?}"
            ),
            UnsupportedDtype { tensor, dtype } => {
                write!(f, "tensor {tensor}: data type {dtype} is not supported here")
            }
            InvalidToken { token, vocab_size } => write!(
                f,
                "token id {token} is outside the vocabulary of {vocab_size} tokens"
            ),
            ContextFull { used, requested, context } => write!(
                f,
                "{requested} tokens do not fit in the context: {used} of {context} positions are used; raise the context length or shorten the prompt"
            ),
            NonFinite { what, index } => write!(
                f,
                "{what} holds a NaN or infinite value at index {index}; the model's weights are damaged or overflowed (check them with `tinyllm inspect --verify`, or reconvert the model)"
            ),
            Tokenizer { message } => write!(f, "tokenizer: {message}"),
            Io { message } => write!(f, "{message}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
