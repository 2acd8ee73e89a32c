//! Reader for GGUF files (versions 2 and 3), the model format of llama.cpp and ggml.
//!
//! [`GgufFile`] memory-maps a file, checks every count, length and offset against the file
//! size, and exposes the metadata, the tensor table and the raw tensor bytes.
//! [`GgufFile::tensor_to_f32`] dequantizes F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors.
//! [`tokenizer_json_from_gguf`] turns the embedded byte-level BPE tokenizer into a Hugging Face
//! `tokenizer.json`, and [`special_tokens`] collects the special token ids and chat template.

mod cursor;
pub mod dequant;
mod error;
mod ggml_type;
mod parse;
mod reader;
mod tokenizer;
mod value;

pub use error::GgufError;
pub use ggml_type::GgmlType;
pub use reader::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};
pub use tokenizer::{special_tokens, tokenizer_json_from_gguf, GgufChatInfo};
pub use value::{MetaArray, MetaValue, ValueType};
