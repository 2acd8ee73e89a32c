//! Tokenization, detokenization and chat templates, with the caller-buffer protocol.
//!
//! Every function here writes into a buffer the caller owns and stores the size it needs in a
//! size output. When the buffer is too small, it stores that size, writes nothing to the
//! buffer and returns TINYLLM_STATUS_BUFFER_TOO_SMALL, so a caller may pass a NULL buffer and a
//! capacity of 0 to ask for the size first.

use std::ffi::c_char;

use tinyllm::ChatMessage;

use crate::args::{self, Buffer, Out};
use crate::error::{guard, tinyllm_status, FfiError, FfiResult};
use crate::model::{tinyllm_model, LoadedModel};
use crate::tinyllm_token;

/// One message of a conversation, for tinyllm_chat_apply_template().
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tinyllm_chat_message {
    /// The speaker, NUL-terminated UTF-8: "system", "user" or "assistant" (templates may accept
    /// others, such as "tool").
    pub role: *const c_char,
    /// The text of the message, NUL-terminated UTF-8.
    pub content: *const c_char,
}

/// Runs `body` with the model behind `model`.
fn with_model(model: *const tinyllm_model, body: impl FnOnce(&LoadedModel) -> FfiResult<()>) -> tinyllm_status {
    guard(|| {
        // SAFETY: the C contract of every function here: `model` is NULL or a live handle.
        let handle = unsafe { args::handle(model, "model") }?;
        body(&handle.inner)
    })
}

/// Converts `text_len` bytes of UTF-8 `text` to token ids, stored in `tokens`, which has room
/// for `capacity` ids, and stores the number of ids in `*n_tokens`.
///
/// With `add_special`, the tokenizer adds the special tokens its post-processor defines (BOS
/// for many models); pass false for text rendered by tinyllm_chat_apply_template(), which
/// already contains them. Special-token text such as "<|im_start|>" inside `text` always
/// becomes the special token. `text` needs no terminating NUL and may be NULL when `text_len`
/// is 0.
///
/// Buffer protocol: when the ids do not fit, stores their count in `*n_tokens`, writes nothing
/// and returns BUFFER_TOO_SMALL; pass `tokens` NULL and `capacity` 0 to get the count.
///
/// Thread safety: any thread; the model may be used by other threads at the same time.
/// Errors: INVALID_ARGUMENT (NULL model or n_tokens, NULL text with a non-zero length, text not
/// UTF-8), UNSUPPORTED (the model has no tokenizer), TOKENIZER, BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or a live handle; `text` is NULL or points to `text_len` bytes; `tokens` is
/// NULL or valid for `capacity` writes; `n_tokens` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_tokenize(
    model: *const tinyllm_model,
    text: *const c_char,
    text_len: usize,
    add_special: bool,
    tokens: *mut tinyllm_token,
    capacity: usize,
    n_tokens: *mut usize,
) -> tinyllm_status {
    with_model(model, |m| {
        // SAFETY: the pointers meet the contract of this function, which these calls forward.
        let (count, buffer, text) = unsafe { (Out::new(n_tokens, "n_tokens")?, Buffer::new(tokens, capacity, "tokens")?, args::text(text, text_len, "text")?) };
        let ids = m.tokenizer()?.encode(text, add_special)?;
        // Ids from the tokenizer are below its vocabulary size, far below 2^31.
        let ids: Vec<tinyllm_token> = ids.iter().map(|&id| id as tinyllm_token).collect();
        buffer.fill(&ids, count, "tokens")
    })
}

/// Converts `n_tokens` token ids to UTF-8 text, stored NUL-terminated in `text`, which has room
/// for `capacity` bytes, and stores the text's length in bytes, without the NUL, in `*text_len`.
///
/// With `skip_special`, special tokens such as end-of-sequence are left out. A sequence that
/// ends inside a multi-byte UTF-8 character ends with U+FFFD there; to stream text token by
/// token, use the pieces that tinyllm_generate() passes to its callback.
///
/// Buffer protocol: the buffer needs `*text_len + 1` bytes. When it is smaller, stores the
/// length in `*text_len`, writes nothing and returns BUFFER_TOO_SMALL; pass `text` NULL and
/// `capacity` 0 to get the length.
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT (NULL model or text_len, NULL tokens
/// with a non-zero count, NULL text with a non-zero capacity), INVALID_TOKEN, UNSUPPORTED (no
/// tokenizer), TOKENIZER, BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or a live handle; `tokens` is NULL or points to `n_tokens` ids; `text` is
/// NULL or valid for `capacity` writes; `text_len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_detokenize(
    model: *const tinyllm_model,
    tokens: *const tinyllm_token,
    n_tokens: usize,
    skip_special: bool,
    text: *mut c_char,
    capacity: usize,
    text_len: *mut usize,
) -> tinyllm_status {
    with_model(model, |m| {
        // SAFETY: the pointers meet the contract of this function, which these calls forward.
        let (length, buffer, tokens) = unsafe { (Out::new(text_len, "text_len")?, Buffer::new(text, capacity, "text")?, args::array(tokens, n_tokens, "tokens")?) };
        let ids = args::token_ids(tokens, m.vocab_size(), "tokens")?;
        let decoded = m.tokenizer()?.decode(&ids, skip_special)?;
        buffer.fill_text(&decoded, length)
    })
}

/// Converts one token id to its text, stored NUL-terminated in `piece`, which has room for
/// `capacity` bytes, and stores the length in bytes, without the NUL, in `*piece_len`.
///
/// Special tokens are included. A token that contains only part of a multi-byte UTF-8
/// character gives U+FFFD.
///
/// Buffer protocol: as tinyllm_detokenize(); the buffer needs `*piece_len + 1` bytes.
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT, INVALID_TOKEN, UNSUPPORTED (no
/// tokenizer), TOKENIZER, BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or a live handle; `piece` is NULL or valid for `capacity` writes;
/// `piece_len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_token_to_piece(
    model: *const tinyllm_model,
    token: tinyllm_token,
    piece: *mut c_char,
    capacity: usize,
    piece_len: *mut usize,
) -> tinyllm_status {
    with_model(model, |m| {
        // SAFETY: the pointers meet the contract of this function, which these calls forward.
        let (length, buffer) = unsafe { (Out::new(piece_len, "piece_len")?, Buffer::new(piece, capacity, "piece")?) };
        let ids = args::token_ids(&[token], m.vocab_size(), "token")?;
        let decoded = m.tokenizer()?.decode(&ids, false)?;
        buffer.fill_text(&decoded, length)
    })
}

/// Renders `n_messages` messages with the model's chat template into `text` (NUL-terminated,
/// room for `capacity` bytes), as transformers' apply_chat_template does. Stores the length in
/// bytes, without the NUL, in `*text_len`.
///
/// With `add_generation_prompt`, the text ends with the opening of an assistant turn, ready for
/// generation. Tokenize the result with `add_special` false.
///
/// Buffer protocol: as tinyllm_detokenize(); the buffer needs `*text_len + 1` bytes.
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT (NULL model, text_len, messages with a
/// non-zero count, role or content; text not UTF-8), UNSUPPORTED (the model has no chat
/// template), TOKENIZER (the template failed, for example it rejected the roles),
/// BUFFER_TOO_SMALL.
///
/// # Safety
/// `model` is NULL or a live handle; `messages` is NULL or points to `n_messages` messages whose
/// strings are NUL-terminated; `text` is NULL or valid for `capacity` writes; `text_len` is NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_chat_apply_template(
    model: *const tinyllm_model,
    messages: *const tinyllm_chat_message,
    n_messages: usize,
    add_generation_prompt: bool,
    text: *mut c_char,
    capacity: usize,
    text_len: *mut usize,
) -> tinyllm_status {
    with_model(model, |m| {
        // SAFETY: the pointers meet the contract of this function, which these calls forward.
        let (length, buffer, messages) = unsafe { (Out::new(text_len, "text_len")?, Buffer::new(text, capacity, "text")?, args::array(messages, n_messages, "messages")?) };
        let messages = messages
            .iter()
            .enumerate()
            .map(|(index, message)| {
                // SAFETY: the strings of each message are NULL or NUL-terminated by this function's contract.
                let (role, content) = unsafe { (args::c_string(message.role, &format!("messages[{index}].role"))?, args::c_string(message.content, &format!("messages[{index}].content"))?) };
                Ok(ChatMessage::new(role, content))
            })
            .collect::<FfiResult<Vec<_>>>()?;
        if m.model.metadata().tokenizer.chat_template.is_none() {
            return Err(FfiError::new(
                tinyllm_status::TINYLLM_STATUS_UNSUPPORTED,
                "the model has no chat template; format the prompt yourself and tokenize it with add_special true",
            ));
        }
        let rendered = m.tokenizer()?.apply_chat_template(&messages, add_generation_prompt)?;
        buffer.fill_text(&rendered, length)
    })
}
