//! `tinyllm_sampler`: greedy and stochastic choice of the next token.

use tinyllm::{Sampler, SamplerParams};

use crate::args::{self, Out};
use crate::context::{check_usable, last_logits, tinyllm_context};
use crate::error::{guard, FfiError, FfiResult};
use crate::{tinyllm_status, tinyllm_token};

/// Sampling parameters. Get the defaults from `tinyllm_sampler_default_params()` and change the
/// fields you need. The filters apply in this order: repetition penalty, top-k, temperature,
/// top-p, min-p.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct tinyllm_sampler_params {
    /// Divisor of the logits before softmax; 0 or less selects greedy decoding (the most likely
    /// token, the lowest id on a tie). Must be finite. Default: 0.8.
    pub temperature: f32,
    /// Keep only the top_k most likely tokens; 0 keeps all. Must be at least 0. Default: 40.
    pub top_k: i32,
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least top_p;
    /// 1 keeps all. Must be in [0, 1]. Default: 0.95.
    pub top_p: f32,
    /// Drop tokens whose probability is below min_p times the most likely token's; 0 keeps all.
    /// Must be in [0, 1]. Default: 0.05.
    pub min_p: f32,
    /// Penalty on tokens among the last repeat_last_n of the context: positive logits are
    /// divided by it, negative ones multiplied. 1 disables it. Must be finite and above 0.
    /// Default: 1.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at. Must be at least 0. Default: 64.
    pub repeat_last_n: i32,
    /// Seed of the random generator: the same seed, model and tokens give the same output.
    /// Default: 0.
    pub seed: u64,
}

/// A sampler: its parameters and random state. Opaque.
pub struct tinyllm_sampler {
    pub(crate) sampler: Sampler,
}

/// Returns the default sampling parameters: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
/// no repetition penalty (1, over the last 64 tokens), seed 0. Set temperature to 0 for greedy
/// decoding.
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_sampler_default_params() -> tinyllm_sampler_params {
    let defaults = SamplerParams::default();
    tinyllm_sampler_params {
        temperature: defaults.temperature,
        top_k: defaults.top_k as i32,
        top_p: defaults.top_p,
        min_p: defaults.min_p,
        repeat_penalty: defaults.repeat_penalty,
        repeat_last_n: defaults.repeat_last_n as i32,
        seed: defaults.seed,
    }
}

/// Checks every field and converts them to the runtime's parameters.
fn checked_params(params: &tinyllm_sampler_params) -> FfiResult<SamplerParams> {
    let field = |name: &str, value: String, expected: &str| FfiError::invalid(format!("sampler parameter {name} is {value}; it must be {expected}"));
    if !params.temperature.is_finite() {
        return Err(field("temperature", params.temperature.to_string(), "finite (0 or less selects greedy decoding)"));
    }
    let top_k = usize::try_from(params.top_k).map_err(|_| field("top_k", params.top_k.to_string(), "at least 0 (0 keeps all tokens)"))?;
    if !(0.0..=1.0).contains(&params.top_p) {
        return Err(field("top_p", params.top_p.to_string(), "between 0 and 1 (1 keeps all tokens)"));
    }
    if !(0.0..=1.0).contains(&params.min_p) {
        return Err(field("min_p", params.min_p.to_string(), "between 0 and 1 (0 keeps all tokens)"));
    }
    if !(params.repeat_penalty.is_finite() && params.repeat_penalty > 0.0) {
        return Err(field("repeat_penalty", params.repeat_penalty.to_string(), "finite and above 0 (1 disables it)"));
    }
    let repeat_last_n =
        usize::try_from(params.repeat_last_n).map_err(|_| field("repeat_last_n", params.repeat_last_n.to_string(), "at least 0"))?;
    Ok(SamplerParams {
        temperature: params.temperature,
        top_k,
        top_p: params.top_p,
        min_p: params.min_p,
        repeat_penalty: params.repeat_penalty,
        repeat_last_n,
        seed: params.seed,
    })
}

/// Creates a sampler. `params` may be NULL for the defaults. On success stores the sampler in
/// `*sampler`, which the caller frees with tinyllm_sampler_free(); on failure stores NULL there.
///
/// Thread safety: any thread. A sampler is used by one thread at a time; give each context its
/// own. Errors: INVALID_ARGUMENT (NULL sampler, a parameter out of range; the message names it).
///
/// # Safety
/// `params` is NULL or valid; `sampler` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_sampler_create(params: *const tinyllm_sampler_params, sampler: *mut *mut tinyllm_sampler) -> tinyllm_status {
    guard(|| {
        // SAFETY: `sampler` is NULL or valid for a write by this function's contract.
        let out = unsafe { Out::new(sampler, "sampler") }?;
        // SAFETY: checked non-NULL and aligned by Out::new; clears the output before any failure.
        unsafe { sampler.write(std::ptr::null_mut()) };
        // SAFETY: `params` is NULL or valid by this function's contract.
        let params = unsafe { params.as_ref() }.copied().unwrap_or_else(|| tinyllm_sampler_default_params());
        let checked = checked_params(&params)?;
        out.write(Box::into_raw(Box::new(tinyllm_sampler { sampler: Sampler::new(checked) })));
        Ok(())
    })
}

/// Frees a sampler. NULL is ignored.
///
/// Thread safety: any thread, but no other call may be using this sampler at the same time.
/// Errors: none.
///
/// # Safety
/// `sampler` is NULL or a sampler from tinyllm_sampler_create() that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_sampler_free(sampler: *mut tinyllm_sampler) {
    guard(|| {
        if !sampler.is_null() {
            // SAFETY: a live sampler made by Box::into_raw in tinyllm_sampler_create, freed once.
            drop(unsafe { Box::from_raw(sampler) });
        }
        Ok(())
    });
}

/// Restarts the random generator from the seed, so that the sampler repeats its choices.
///
/// Thread safety: one thread at a time per sampler. Errors: INVALID_ARGUMENT (NULL sampler).
///
/// # Safety
/// `sampler` is NULL or a live sampler.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_sampler_reset(sampler: *mut tinyllm_sampler) -> tinyllm_status {
    guard(|| {
        // SAFETY: `sampler` is NULL or a live, unshared sampler by this function's contract.
        let handle = unsafe { args::handle_mut(sampler, "sampler") }?;
        handle.sampler = Sampler::new(*handle.sampler.params());
        Ok(())
    })
}

/// Picks the next token from the logits of the last token evaluated in `context`, with the
/// context's tokens as the history for the repetition penalty, and stores it in `*token`. The
/// token is not evaluated: pass it to tinyllm_context_eval() to continue.
///
/// Thread safety: one thread at a time per sampler and per context. Errors: INVALID_ARGUMENT
/// (NULL argument), INVALID_STATE (the context has no logits yet).
///
/// # Safety
/// `sampler` and `context` are NULL or live handles; `token` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_sampler_sample(sampler: *mut tinyllm_sampler, context: *const tinyllm_context, token: *mut tinyllm_token) -> tinyllm_status {
    guard(|| {
        // SAFETY: the pointers are NULL or valid by this function's contract.
        let (handle, context, out) =
            unsafe { (args::handle_mut(sampler, "sampler")?, args::handle(context, "context")?, Out::new(token, "token")?) };
        check_usable(context)?;
        let logits = last_logits(context)?;
        // Ids are below the vocabulary size, at most 2^24, so they fit in int32_t.
        out.write(handle.sampler.sample(logits, context.session.tokens()) as tinyllm_token);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_checks() {
        let checked = checked_params(&tinyllm_sampler_default_params()).unwrap();
        assert_eq!(checked, SamplerParams::default());
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let defaults = tinyllm_sampler_default_params();
        let cases = [
            ("temperature", tinyllm_sampler_params { temperature: f32::NAN, ..defaults }),
            ("top_k", tinyllm_sampler_params { top_k: -1, ..defaults }),
            ("top_p", tinyllm_sampler_params { top_p: 1.5, ..defaults }),
            ("min_p", tinyllm_sampler_params { min_p: -0.1, ..defaults }),
            ("repeat_penalty", tinyllm_sampler_params { repeat_penalty: 0.0, ..defaults }),
            ("repeat_last_n", tinyllm_sampler_params { repeat_last_n: -5, ..defaults }),
        ];
        for (name, params) in cases {
            let error = checked_params(&params).unwrap_err();
            assert_eq!(error.status, tinyllm_status::TINYLLM_STATUS_INVALID_ARGUMENT, "{name}");
            assert!(error.message.contains(name), "{name}: {}", error.message);
        }
    }
}
