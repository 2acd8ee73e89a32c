//! [`Session`]: one conversation with a model, owning its KV cache.

use alloc::vec::Vec;

use crate::error::{ErrorKind, Result};
use crate::forward::kv_cache::{KvCache, KvType};
use crate::forward::Forward;
use crate::model::Model;

/// Context length used when the caller does not choose one.
pub const DEFAULT_CONTEXT: usize = 4096;

/// Most tokens one forward pass runs: longer prompts go through in batches of this many, so
/// that activation buffers stay at this size (about 15 MiB for Qwen2.5-0.5B) whatever the
/// prompt length. Each batch reads the weights once more, about 1% of a batch's time at 0.5B.
pub const MAX_BATCH: usize = 256;

/// A conversation state: the KV cache of the tokens seen so far and the latest logits.
///
/// Prefill many tokens with one [`Session::eval`] call, then decode one token at a time. A
/// session is used by one thread at a time; many sessions may share one [`Model`].
#[derive(Debug)]
pub struct Session<'m> {
    model: &'m Model<'m>,
    cache: KvCache,
    forward: Forward,
    logits: Vec<f32>,
    tokens: Vec<u32>,
}

impl<'m> Session<'m> {
    /// Creates a session with `context` positions, capped by the model's maximum context.
    /// `None` selects [`DEFAULT_CONTEXT`] (also capped).
    pub fn new(model: &'m Model<'m>, context: Option<usize>) -> Session<'m> {
        Session::with_kv_type(model, context, KvType::F32)
    }

    /// Creates a session like [`Session::new`] whose KV cache stores `kv_type` values: f16
    /// halves the cache's memory and the bytes attention reads, at a small cost in precision
    /// (docs/benchmarks.md measures it).
    pub fn with_kv_type(model: &'m Model<'m>, context: Option<usize>, kv_type: KvType) -> Session<'m> {
        let max = model.metadata().max_context as usize;
        let context = context.unwrap_or(DEFAULT_CONTEXT).clamp(1, max);
        Session {
            model,
            cache: KvCache::with_type(model.metadata(), context, kv_type),
            forward: Forward::new(model.metadata()),
            logits: Vec::new(),
            tokens: Vec::new(),
        }
    }

    /// Creates a session like [`Session::new`] whose matrix products run on `threads`
    /// threads (the caller's included) of a pool the session owns.
    #[cfg(feature = "std")]
    pub fn with_threads(model: &'m Model<'m>, context: Option<usize>, threads: usize) -> Session<'m> {
        let mut session = Session::new(model, context);
        session.set_threads(threads);
        session
    }

    /// Runs the matrix products on `threads` threads (the caller's included) of a pool the
    /// session owns, from the next evaluation on.
    #[cfg(feature = "std")]
    pub fn set_threads(&mut self, threads: usize) {
        self.forward.set_threads(threads);
    }

    /// Number of threads the matrix products run on.
    pub fn threads(&self) -> usize {
        self.forward.threads()
    }

    /// Returns the model this session runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Context length in positions.
    pub fn context(&self) -> usize {
        self.cache.capacity()
    }

    /// Number of positions used.
    pub fn position(&self) -> usize {
        self.cache.len()
    }

    /// Returns the tokens evaluated so far, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets all tokens; the next [`Session::eval`] starts at position 0.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.tokens.clear();
        self.logits.clear();
    }

    /// Keeps the first `len` tokens and drops the rest, so a conversation can continue from
    /// a shared prefix. The logits are cleared; evaluate a token before sampling again.
    pub fn truncate(&mut self, len: usize) {
        if len < self.tokens.len() {
            self.cache.truncate(len);
            self.tokens.truncate(len);
            self.logits.clear();
        }
    }

    /// Returns the kernel table this session runs, or the error that selecting it raised.
    pub fn kernels(&self) -> Result<&'static crate::kernels::Kernels> {
        self.forward.kernels()
    }

    /// The element type of the KV cache.
    pub fn kv_type(&self) -> KvType {
        self.cache.kv_type()
    }

    /// Bytes held by the KV cache.
    pub fn kv_cache_bytes(&self) -> usize {
        self.cache.bytes_used()
    }

    /// Evaluates `tokens` after the ones already seen and returns the logits of the last one.
    ///
    /// Fails without changing the session when a token id is outside the vocabulary, the
    /// tokens do not fit in the context, or the logits come out NaN or infinite (damaged
    /// weights).
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.eval_inner(tokens, false)?;
        Ok(&self.logits)
    }

    /// Evaluates `tokens` and returns the logits of every one of them, `tokens.len()` × vocab.
    pub fn eval_all_logits(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.eval_inner(tokens, true)?;
        Ok(&self.logits)
    }

    /// Returns the logits of the last evaluated token (empty before the first evaluation).
    pub fn logits(&self) -> &[f32] {
        let vocab = self.model.metadata().vocab_size as usize;
        let len = self.logits.len();
        &self.logits[len.saturating_sub(vocab)..]
    }

    fn eval_inner(&mut self, tokens: &[u32], all_logits: bool) -> Result<()> {
        if tokens.is_empty() {
            return Err(ErrorKind::InvalidValue {
                field: "tokens".into(),
                value: "an empty slice".into(),
                expected: "at least one token".into(),
            }
            .into());
        }
        let vocab_size = self.model.metadata().vocab_size;
        if let Some(&token) = tokens.iter().find(|&&t| t >= vocab_size) {
            return Err(ErrorKind::InvalidToken { token, vocab_size }.into());
        }
        let used = self.cache.len();
        if used + tokens.len() > self.cache.capacity() {
            return Err(ErrorKind::ContextFull { used, requested: tokens.len(), context: self.cache.capacity() }.into());
        }
        self.forward.kernels()?;
        if let Err(error) = self.run_batches(tokens, all_logits) {
            self.cache.truncate(used);
            self.logits.clear();
            return Err(error);
        }
        // NaN or infinite weights reach the logits; report them instead of sampling garbage,
        // and leave the session as it was before this call.
        if let Some(at) = self.logits.iter().position(|v| !v.is_finite()) {
            self.cache.truncate(used);
            self.logits.clear();
            let first = if all_logits { used } else { used + tokens.len() - 1 };
            let position = first + at / vocab_size as usize;
            return Err(ErrorKind::NonFinite { what: "logits".into(), index: position as u64 }.into());
        }
        self.tokens.extend_from_slice(tokens);
        Ok(())
    }

    /// Runs `tokens` through the forward pass in batches of at most [`MAX_BATCH`], leaving in
    /// `self.logits` the logits of every token (`all_logits`) or of the last one.
    fn run_batches(&mut self, tokens: &[u32], all_logits: bool) -> Result<()> {
        if tokens.len() <= MAX_BATCH {
            return self.forward.run(self.model, &mut self.cache, tokens, all_logits, &mut self.logits);
        }
        let mut batch_logits = Vec::new();
        self.logits.clear();
        let batches = tokens.len().div_ceil(MAX_BATCH);
        for (i, batch) in tokens.chunks(MAX_BATCH).enumerate() {
            self.forward.run(self.model, &mut self.cache, batch, all_logits, &mut batch_logits)?;
            if all_logits || i + 1 == batches {
                self.logits.extend_from_slice(&batch_logits);
            }
        }
        Ok(())
    }
}
