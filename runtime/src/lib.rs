//! tinyllm: a small, fast runtime for decoder-only language models on CPUs and edge devices.
//!
//! The main types are [`Model`] (an open `.tllm` file, memory-mapped and validated),
//! [`Session`] (one conversation: KV cache and logits), [`Sampler`] (greedy and stochastic
//! token choice) and, with the `std` feature, [`Tokenizer`] (the embedded Hugging Face
//! tokenizer and chat template).
//!
//! Without the default `std` feature the crate is `no_std` and needs only `alloc`: a model is
//! opened from bytes in memory with [`Model::from_bytes`].
//!
//! ```no_run
//! # fn main() -> Result<(), tinyllm::Error> {
//! use tinyllm::{Model, Sampler, SamplerParams, Session, Tokenizer};
//! let model = Model::open("model.tllm")?;
//! let tokenizer = Tokenizer::from_model(&model)?;
//! let mut session = Session::new(&model, None);
//! let mut sampler = Sampler::new(SamplerParams::greedy());
//! let prompt = tokenizer.encode("The capital of France is", true)?;
//! session.eval(&prompt)?;
//! let next = sampler.sample(session.logits(), session.tokens());
//! # Ok(()) }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod chat_template;
pub mod error;
pub mod format;
pub mod forward;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod sampler;
pub mod session;
pub mod tensor;
#[cfg(feature = "std")]
pub mod threads;
#[cfg(feature = "std")]
pub mod tokenizer;

pub use error::{Error, ErrorKind, Result};
pub use format::{Architecture, DType, Metadata};
pub use model::{Model, OpenOptions};
pub use sampler::{Sampler, SamplerParams};
pub use forward::kv_cache::KvType;
pub use session::{Session, DEFAULT_CONTEXT, MAX_BATCH};
#[cfg(feature = "std")]
pub use tokenizer::{ChatMessage, TextStream, Tokenizer};
