//! The tokenizer embedded in a model file, and chat template rendering.

use std::string::{String, ToString};
use std::vec::Vec;

use crate::error::{Error, ErrorKind, Result};
use crate::format::TokenizerInfo;
use crate::model::Model;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl ChatMessage {
    /// Creates a message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// A Hugging Face tokenizer loaded from the model's tokenizer section, with its chat template.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    info: TokenizerInfo,
}

impl core::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.inner.get_vocab_size(true)).finish()
    }
}

fn tokenizer_error(message: impl ToString) -> Error {
    ErrorKind::Tokenizer { message: message.to_string() }.into()
}

impl Tokenizer {
    /// Loads the tokenizer stored in `model`.
    pub fn from_model(model: &Model<'_>) -> Result<Tokenizer> {
        let json = model.tokenizer_json();
        if json.is_empty() {
            return Err(tokenizer_error("the model file has no tokenizer section; convert it again with its tokenizer.json"));
        }
        Self::from_json(json, model.metadata().tokenizer.clone())
    }

    /// Loads a tokenizer from `tokenizer.json` bytes and its chat facts.
    pub fn from_json(json: &[u8], info: TokenizerInfo) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(json).map_err(|e| tokenizer_error(format!("invalid tokenizer.json: {e}")))?;
        Ok(Tokenizer { inner, info })
    }

    /// Encodes `text`. With `add_special_tokens`, the tokenizer's post-processor adds its
    /// special tokens (BOS for many models). Special-token text in `text` is always matched.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, add_special_tokens).map_err(|e| tokenizer_error(format!("encoding failed: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes `ids` to text, leaving out special tokens when `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| tokenizer_error(format!("decoding failed: {e}")))
    }

    /// Number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of the token whose text is `token`.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Whether the model has a chat template.
    pub fn has_chat_template(&self) -> bool {
        self.info.chat_template.is_some()
    }

    /// Renders `messages` with the model's chat template, as `apply_chat_template` in
    /// transformers does; `add_generation_prompt` appends the assistant turn's opening.
    pub fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .info
            .chat_template
            .as_deref()
            .ok_or_else(|| tokenizer_error("the model has no chat template; run without --chat"))?;
        crate::chat_template::render(template, messages, add_generation_prompt, &self.info)
    }
}

/// Turns generated token ids into text pieces as they arrive.
///
/// A byte-level token may end inside a UTF-8 character; such text is held back until the
/// character is complete, so every returned piece is valid text.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    tokens: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl TextStream {
    /// Creates an empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token` and returns the new text it completes (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> Result<String> {
        self.tokens.push(token);
        let before = tokenizer.decode(&self.tokens[self.prefix_offset..self.read_offset], false)?;
        let after = tokenizer.decode(&self.tokens[self.prefix_offset..], false)?;
        if after.len() > before.len() && !after.ends_with('\u{FFFD}') && after.is_char_boundary(before.len()) {
            let piece = after[before.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.tokens.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }
}
