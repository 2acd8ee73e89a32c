//! `tinyllm_context`: one conversation with a model, holding its KV cache and logits.

use std::sync::Arc;

use tinyllm::{Model, Session};

use crate::args::{self, Buffer, Out};
use crate::error::{guard, guard_value, tinyllm_status, FfiError, FfiResult};
use crate::model::{tinyllm_model, LoadedModel};
use crate::tinyllm_token;

/// Options for creating a context. Get the defaults from `tinyllm_context_default_params()`
/// and change the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tinyllm_context_params {
    /// Context length: the most tokens (prompt and generated) the context holds. 0 selects the
    /// model's maximum context; larger values are capped at it. Default: 4096.
    pub n_ctx: u32,
}

/// One conversation: the KV cache of the tokens evaluated so far and the latest logits. Opaque.
pub struct tinyllm_context {
    // Field order matters: fields drop in declaration order, and `session` borrows the model
    // that `model` keeps alive, so `session` must be declared (and dropped) first.
    pub(crate) session: Session<'static>,
    pub(crate) model: Arc<LoadedModel>,
    /// Set after a panic inside a call on this context, whose state may then be half-updated.
    unusable: bool,
}

// A context may move between threads (one at a time): assert it at compile time.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<tinyllm_context>();
};

/// Runs `body` on a context handle. A panic inside it marks the context unusable, so that later
/// calls fail with TINYLLM_STATUS_INVALID_STATE instead of running on a half-updated cache.
///
/// # Safety
/// `ctx` is NULL or a live context that no other thread uses during the call.
pub(crate) unsafe fn with_context<T>(ctx: *mut tinyllm_context, fallback: T, body: impl FnOnce(&mut tinyllm_context) -> FfiResult<T>) -> (T, tinyllm_status) {
    let result = guard_value(fallback, || {
        // SAFETY: `ctx` is NULL or a live, unshared context by this function's contract.
        let context = unsafe { args::handle_mut(ctx, "context") }?;
        check_usable(context)?;
        body(context)
    });
    if result.1 == tinyllm_status::TINYLLM_STATUS_INTERNAL && !ctx.is_null() {
        // SAFETY: as above; the borrow inside the closure has ended.
        unsafe { (*ctx).unusable = true };
    }
    result
}

/// Runs `body` on a context handle that it only reads.
///
/// # Safety
/// `ctx` is NULL or a live context that no other thread uses during the call.
unsafe fn with_context_ref<T>(ctx: *const tinyllm_context, fallback: T, body: impl FnOnce(&tinyllm_context) -> FfiResult<T>) -> (T, tinyllm_status) {
    guard_value(fallback, || {
        // SAFETY: `ctx` is NULL or a live context by this function's contract.
        let context = unsafe { args::handle(ctx, "context") }?;
        check_usable(context)?;
        body(context)
    })
}

pub(crate) fn check_usable(context: &tinyllm_context) -> FfiResult<()> {
    if context.unusable {
        return Err(FfiError::new(
            tinyllm_status::TINYLLM_STATUS_INVALID_STATE,
            "the context is unusable after an internal error in an earlier call; free it and create a new one",
        ));
    }
    Ok(())
}

/// Returns the default context parameters: a context of 4096 tokens (capped by the model).
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_context_default_params() -> tinyllm_context_params {
    tinyllm_context_params { n_ctx: tinyllm::DEFAULT_CONTEXT as u32 }
}

/// Creates a context for `model`. `params` may be NULL for the defaults.
///
/// The context holds its own reference to the model, so the model handle may be freed before
/// the context. Memory for the KV cache grows with the tokens evaluated, up to n_ctx tokens. On
/// success stores the new context in `*context`, which the caller frees with
/// tinyllm_context_free(); on failure stores NULL there.
///
/// Thread safety: any thread; many contexts of one model may be created and used on different
/// threads at once. Errors: INVALID_ARGUMENT (NULL model or context).
///
/// # Safety
/// `model` is NULL or a live handle; `params` is NULL or valid; `context` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_create(
    model: *const tinyllm_model,
    params: *const tinyllm_context_params,
    context: *mut *mut tinyllm_context,
) -> tinyllm_status {
    guard(|| {
        // SAFETY: `context` is valid for a write by this function's contract.
        let out = unsafe { Out::new(context, "context") }?;
        // SAFETY: checked non-NULL and aligned by Out::new; clears the output before any failure.
        unsafe { context.write(std::ptr::null_mut()) };
        // SAFETY: `model` is NULL or a live handle by this function's contract.
        let handle = unsafe { args::handle(model, "model") }?;
        // SAFETY: `params` is NULL or valid by this function's contract.
        let params = unsafe { params.as_ref() }.copied().unwrap_or_else(|| tinyllm_context_default_params());

        let shared = Arc::clone(&handle.inner);
        // SAFETY: the reference points into the Arc's heap allocation, which does not move and
        // lives while any Arc clone does. The context stores the clone `shared` in its `model`
        // field, declared after `session`, so the session with this reference is dropped before
        // the clone. The reference is never handed out beyond the context.
        let model_ref: &'static Model<'static> = unsafe { &*std::ptr::addr_of!(shared.model) };
        let n_ctx = if params.n_ctx == 0 { model_ref.metadata().max_context as usize } else { params.n_ctx as usize };
        let session = Session::new(model_ref, Some(n_ctx));
        out.write(Box::into_raw(Box::new(tinyllm_context { session, model: shared, unusable: false })));
        Ok(())
    })
}

/// Frees a context. NULL is ignored. The model is released too when this was the last
/// reference to it.
///
/// Thread safety: any thread, but no other call may be using this context at the same time.
/// Errors: none.
///
/// # Safety
/// `context` is NULL or a context from tinyllm_context_create() that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_free(context: *mut tinyllm_context) {
    guard(|| {
        if !context.is_null() {
            // SAFETY: a live context made by Box::into_raw in tinyllm_context_create, freed once.
            drop(unsafe { Box::from_raw(context) });
        }
        Ok(())
    });
}

/// Runs a getter on a context handle; on NULL stores the last error and returns `fallback`.
fn get<T>(context: *const tinyllm_context, fallback: T, body: impl FnOnce(&tinyllm_context) -> T) -> T {
    guard_value(fallback, || {
        // SAFETY: the C contract of every getter: `context` is NULL or a live context.
        let handle = unsafe { args::handle(context, "context") }?;
        Ok(body(handle))
    })
    .0
}

/// Returns the context length in tokens (n_ctx after capping), or -1 when `context` is NULL.
///
/// Thread safety: as for any call on a context, one thread at a time. Errors: NULL context
/// (last error set).
///
/// # Safety
/// `context` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_n_ctx(context: *const tinyllm_context) -> i32 {
    get(context, -1, |c| i32::try_from(c.session.context()).unwrap_or(i32::MAX))
}

/// Returns the number of tokens in the KV cache, which is also the position the next evaluated
/// token takes; -1 when `context` is NULL.
///
/// Thread safety: one thread at a time per context. Errors: NULL context (last error set).
///
/// # Safety
/// `context` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_position(context: *const tinyllm_context) -> i32 {
    get(context, -1, |c| i32::try_from(c.session.position()).unwrap_or(i32::MAX))
}

/// Returns the bytes the KV cache has allocated now (it grows with the tokens evaluated), or 0
/// when `context` is NULL.
///
/// Thread safety: one thread at a time per context. Errors: NULL context (last error set).
///
/// # Safety
/// `context` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_kv_cache_bytes(context: *const tinyllm_context) -> u64 {
    get(context, 0, |c| c.session.kv_cache_bytes() as u64)
}

/// Copies the tokens in the KV cache, oldest first, into `tokens`, which has room for
/// `capacity` ids, and stores their count in `*n_tokens`.
///
/// Buffer protocol: when the count exceeds `capacity`, stores the count in `*n_tokens`, writes
/// nothing to `tokens` and returns BUFFER_TOO_SMALL; `tokens` may be NULL when `capacity` is 0.
///
/// Thread safety: one thread at a time per context. Errors: INVALID_ARGUMENT (NULL context or
/// n_tokens, NULL tokens with a non-zero capacity), BUFFER_TOO_SMALL.
///
/// # Safety
/// `context` is NULL or a live context; `tokens` is NULL or valid for `capacity` writes;
/// `n_tokens` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_tokens(
    context: *const tinyllm_context,
    tokens: *mut tinyllm_token,
    capacity: usize,
    n_tokens: *mut usize,
) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context_ref(context, (), |c| {
            let count = Out::new(n_tokens, "n_tokens")?;
            let buffer = Buffer::new(tokens, capacity, "tokens")?;
            // Token ids are below the vocabulary size, at most 2^24, so they fit in int32_t.
            let ids: Vec<tinyllm_token> = c.session.tokens().iter().map(|&id| id as tinyllm_token).collect();
            buffer.fill(&ids, count, "tokens")
        })
    }
    .1
}

/// Forgets every token; the next evaluation starts at position 0. The allocated KV cache memory
/// is kept for reuse.
///
/// Thread safety: one thread at a time per context. Errors: INVALID_ARGUMENT (NULL context).
///
/// # Safety
/// `context` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_reset(context: *mut tinyllm_context) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context(context, (), |c| {
            c.session.reset();
            Ok(())
        })
    }
    .1
}

/// Keeps the first `n_keep` tokens and drops the rest, so that a conversation can continue
/// from a shared prefix. Does nothing when `n_keep` is at least the position. When tokens are
/// dropped the logits are cleared too, so evaluate a token before reading logits or sampling.
///
/// Thread safety: one thread at a time per context. Errors: INVALID_ARGUMENT (NULL context).
///
/// # Safety
/// `context` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_truncate(context: *mut tinyllm_context, n_keep: usize) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context(context, (), |c| {
            c.session.truncate(n_keep);
            Ok(())
        })
    }
    .1
}

/// Evaluates `n_tokens` tokens after those already in the context, for example a whole prompt
/// at once, then one generated token at a time. Afterwards tinyllm_context_logits() returns the
/// logits of the last of them.
///
/// On failure the context is unchanged. The call runs to completion; to stop a long generation
/// early use tinyllm_generate() with an abort callback.
///
/// Thread safety: one thread at a time per context; contexts of one model run in parallel.
/// Errors: INVALID_ARGUMENT (NULL context, NULL tokens, n_tokens 0), INVALID_TOKEN (an id
/// outside the vocabulary), CONTEXT_FULL (the tokens do not fit in the positions left).
///
/// # Safety
/// `context` is NULL or a live context; `tokens` is NULL or points to `n_tokens` ids.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_eval(context: *mut tinyllm_context, tokens: *const tinyllm_token, n_tokens: usize) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context(context, (), |c| {
            let tokens = args::array(tokens, n_tokens, "tokens")?;
            eval(c, tokens, "tokens")
        })
    }
    .1
}

/// Checks and evaluates C token ids in `context`.
pub(crate) fn eval(context: &mut tinyllm_context, tokens: &[tinyllm_token], name: &str) -> FfiResult<()> {
    if tokens.is_empty() {
        return Err(FfiError::invalid(format!("{name} is empty; pass at least one token")));
    }
    let ids = args::token_ids(tokens, context.model.vocab_size(), name)?;
    context.session.eval(&ids)?;
    Ok(())
}

/// Stores in `*logits` a pointer to the logits of the last evaluated token, one float per
/// vocabulary entry, and their count (the vocabulary size) in `*n_logits`.
///
/// The array belongs to the context and stays valid until the next call that changes the
/// context (eval, generate, reset, truncate, free).
///
/// Thread safety: one thread at a time per context. Errors: INVALID_ARGUMENT (NULL argument),
/// INVALID_STATE (nothing evaluated yet, or logits cleared by reset or truncate).
///
/// # Safety
/// `context` is NULL or a live context; `logits` and `n_logits` are NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_context_logits(context: *const tinyllm_context, logits: *mut *const f32, n_logits: *mut usize) -> tinyllm_status {
    // SAFETY: forwarded contract of this function.
    unsafe {
        with_context_ref(context, (), |c| {
            let out_logits = Out::new(logits, "logits")?;
            let out_count = Out::new(n_logits, "n_logits")?;
            let values = last_logits(c)?;
            out_logits.write(values.as_ptr());
            out_count.write(values.len());
            Ok(())
        })
    }
    .1
}

/// Returns the logits of the last evaluated token, or INVALID_STATE when there are none.
pub(crate) fn last_logits(context: &tinyllm_context) -> FfiResult<&[f32]> {
    let values = context.session.logits();
    if values.is_empty() {
        return Err(FfiError::new(
            tinyllm_status::TINYLLM_STATUS_INVALID_STATE,
            "the context has no logits: evaluate at least one token first (reset and truncate clear them)",
        ));
    }
    Ok(values)
}
