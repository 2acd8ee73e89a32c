//! Function-call training data: the JSONL chat format, importers for SNIPS and BFCL,
//! deterministic train/dev splits, and rendering with a chat template into token ids with a
//! loss mask.

pub mod bfcl;
pub mod chat;
pub mod cli;
pub mod error;
pub mod jsonl;
pub mod render;
pub mod snips;
pub mod split;

pub use chat::{Conversation, FunctionCall, FunctionSpec, Message, Role, Tool, ToolCall};
pub use error::{DataError, FieldError};
pub use jsonl::{read_conversations, write_conversations};
pub use render::{tokenize_conversation, ChatTemplate, TokenizedExample, ToolStyle};
pub use split::split_train_dev;
