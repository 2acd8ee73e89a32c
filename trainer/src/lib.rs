//! The tinyllm trainer: function-call data, supervised fine-tuning and logit distillation on
//! candle, for Llama, Qwen2 and Qwen3 decoders with per-layer dimensions.

pub mod atomic;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod safetensors_io;
pub mod train;

pub use error::{Result, TrainError};
pub use model::{Decoder, ModelInput};
pub use train::batch::Example;
