//! tinyllm-convert: turns Hugging Face safetensors directories and GGUF files into `.tllm`
//! files for the tinyllm runtime.
//!
//! [`convert::convert`] is the entry point; [`gguf`] is a standalone GGUF reader.
#![deny(missing_docs)]

pub mod convert;
pub mod error;
pub mod from_gguf;
pub mod gguf;
pub mod hf;
mod order;
pub mod recipe;
pub mod source;

pub use convert::{convert, ConvertOptions, Summary};
pub use error::{ConvertError, Result};
