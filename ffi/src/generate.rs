//! `tinyllm_generate`: the sample-evaluate loop with streamed text, stop conditions and abort.

use std::ffi::{c_char, c_void};

use tinyllm::TextStream;

use crate::args::{self, Out};
use crate::context::{eval, last_logits, tinyllm_context, with_context};
use crate::error::{FfiError, FfiResult};
use crate::sampler::tinyllm_sampler;
use crate::{tinyllm_status, tinyllm_token};

/// Called by tinyllm_generate() for each generated token, in order.
///
/// `piece` is the text that the token completes, NUL-terminated, `piece_len` bytes without the
/// NUL. It may be empty: text of a multi-byte UTF-8 character split across tokens is held back
/// until the character is complete, and a model without a tokenizer gives empty pieces. The
/// pointer is valid only during the call. Return 0 to continue or any other value to stop.
/// The callback must not unwind (throw a C++ exception or longjmp) through tinyllm.
pub type tinyllm_token_callback = Option<unsafe extern "C" fn(token: tinyllm_token, piece: *const c_char, piece_len: usize, user_data: *mut c_void) -> i32>;

/// Called by tinyllm_generate() before each evaluation; return true to abort the generation.
/// The callback must not unwind (throw a C++ exception or longjmp) through tinyllm.
pub type tinyllm_abort_callback = Option<unsafe extern "C" fn(user_data: *mut c_void) -> bool>;

/// Reason tinyllm_generate() stopped.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tinyllm_stop_reason {
    /// The sampler chose an end-of-sequence token. That token is neither passed to the callback
    /// nor evaluated.
    TINYLLM_STOP_EOS = 0,
    /// max_tokens tokens were generated.
    TINYLLM_STOP_MAX_TOKENS = 1,
    /// The token callback returned a non-zero value.
    TINYLLM_STOP_CALLBACK = 2,
    /// The context has no position left for the last generated token.
    TINYLLM_STOP_CONTEXT_FULL = 3,
    /// The abort callback returned true; tinyllm_generate() returned TINYLLM_STATUS_ABORTED.
    TINYLLM_STOP_ABORTED = 4,
}

/// Outcome of tinyllm_generate().
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tinyllm_generate_result {
    /// Tokens generated and passed to the token callback; an end-of-sequence token is not counted.
    pub n_generated: usize,
    /// Reason generation stopped.
    pub stop_reason: tinyllm_stop_reason,
}

/// Evaluates `n_prompt` prompt tokens after those already in `context`, then generates up to
/// `max_tokens` tokens with `sampler`, calling `on_token` for each.
///
/// The loop samples a token from the latest logits, stops at an end-of-sequence token, passes
/// the token and its text to `on_token`, and evaluates it before sampling the next one. The
/// last generated token is not evaluated, so a caller who continues the conversation passes it
/// (or the re-rendered conversation) as the next prompt. With `n_prompt` 0 generation continues
/// from the logits already in the context. `should_abort` is called before each evaluation;
/// when it returns true the call returns ABORTED, leaving the tokens evaluated so far in the
/// context. `user_data` is passed to both callbacks, and either callback may be NULL. When
/// `result` is not NULL, it receives the count and the stop reason on OK and on ABORTED.
///
/// Thread safety: one thread at a time per context and per sampler. The callbacks run on the
/// calling thread. Errors: INVALID_ARGUMENT (NULL context or sampler, NULL prompt with a
/// non-zero count), INVALID_TOKEN, CONTEXT_FULL (the prompt does not fit, and nothing was
/// evaluated), INVALID_STATE (n_prompt 0 and no logits in the context), TOKENIZER, ABORTED.
///
/// # Safety
/// `context` and `sampler` are NULL or live handles; `prompt` is NULL or points to `n_prompt`
/// ids; `result` is NULL or valid for a write; the callbacks are NULL or valid functions that
/// accept `user_data`.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_generate(
    context: *mut tinyllm_context,
    sampler: *mut tinyllm_sampler,
    prompt: *const tinyllm_token,
    n_prompt: usize,
    max_tokens: usize,
    on_token: tinyllm_token_callback,
    should_abort: tinyllm_abort_callback,
    user_data: *mut c_void,
    result: *mut tinyllm_generate_result,
) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context(context, (), |c| {
            let sampler = args::handle_mut(sampler, "sampler")?;
            let prompt = args::array(prompt, n_prompt, "prompt")?;
            let result = if result.is_null() { None } else { Some(Out::new(result, "result")?) };
            let callbacks = Callbacks { on_token, should_abort, user_data };
            let outcome = run(c, sampler, prompt, max_tokens, &callbacks)?;
            if let Some(out) = result {
                out.write(outcome);
            }
            match outcome.stop_reason {
                tinyllm_stop_reason::TINYLLM_STOP_ABORTED => {
                    Err(FfiError::new(tinyllm_status::TINYLLM_STATUS_ABORTED, format!("generation aborted by the abort callback after {} tokens", outcome.n_generated)))
                }
                _ => Ok(()),
            }
        })
    }
    .1
}

struct Callbacks {
    on_token: tinyllm_token_callback,
    should_abort: tinyllm_abort_callback,
    user_data: *mut c_void,
}

impl Callbacks {
    fn should_abort(&self) -> bool {
        // SAFETY: tinyllm_generate's caller provides a valid function that accepts user_data.
        self.should_abort.is_some_and(|callback| unsafe { callback(self.user_data) })
    }

    /// Passes a token and its NUL-terminated text to the callback; returns true to stop.
    fn on_token(&self, token: tinyllm_token, piece: &mut Vec<u8>) -> bool {
        let Some(callback) = self.on_token else { return false };
        let len = piece.len();
        piece.push(0);
        // SAFETY: tinyllm_generate's caller provides a valid function that accepts user_data.
        // `piece` contains `len` bytes and a NUL and outlives the call.
        let stop = unsafe { callback(token, piece.as_ptr().cast::<c_char>(), len, self.user_data) } != 0;
        piece.pop();
        stop
    }
}

fn run(
    context: &mut tinyllm_context,
    sampler: &mut tinyllm_sampler,
    prompt: &[tinyllm_token],
    max_tokens: usize,
    callbacks: &Callbacks,
) -> FfiResult<tinyllm_generate_result> {
    let model = std::sync::Arc::clone(&context.model);
    // A model without a tokenizer section still generates ids, with empty pieces; a tokenizer
    // that exists but fails to load is an error.
    let tokenizer = match model.tokenizer() {
        Ok(tokenizer) => Some(tokenizer),
        Err(error) if error.status == tinyllm_status::TINYLLM_STATUS_UNSUPPORTED => None,
        Err(error) => return Err(error),
    };
    let finish = |n_generated, stop_reason| Ok(tinyllm_generate_result { n_generated, stop_reason });

    if prompt.is_empty() {
        last_logits(context)?;
    } else {
        if callbacks.should_abort() {
            return finish(0, tinyllm_stop_reason::TINYLLM_STOP_ABORTED);
        }
        eval(context, prompt, "prompt")?;
    }

    let mut stream = TextStream::new();
    let mut piece = Vec::new();
    let mut generated = 0;
    loop {
        if generated == max_tokens {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_MAX_TOKENS);
        }
        let token = sampler.sampler.sample(context.session.logits(), context.session.tokens());
        if model.is_eos(token) {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_EOS);
        }
        generated += 1;
        piece.clear();
        if let Some(tokenizer) = tokenizer {
            piece.extend_from_slice(stream.push(tokenizer, token)?.as_bytes());
        }
        // Ids are below the vocabulary size, at most 2^24, so they fit in int32_t.
        if callbacks.on_token(token as tinyllm_token, &mut piece) {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_CALLBACK);
        }
        if generated == max_tokens {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_MAX_TOKENS);
        }
        if context.session.position() == context.session.context() {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_CONTEXT_FULL);
        }
        if callbacks.should_abort() {
            return finish(generated, tinyllm_stop_reason::TINYLLM_STOP_ABORTED);
        }
        context.session.eval(&[token])?;
    }
}
