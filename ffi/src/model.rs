//! `tinyllm_model`: loading, freeing and metadata getters.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, OnceLock};

use tinyllm::{Architecture, Model, OpenOptions, Tokenizer};

use crate::args::{self, Out};
use crate::error::{guard, guard_value, tinyllm_status, FfiError, FfiResult};
use crate::tinyllm_token;

/// Options for loading a model. Get the defaults from `tinyllm_model_default_params()` and
/// change the fields you need, so that code keeps compiling when fields are added.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tinyllm_model_params {
    /// Check the CRC-32 of every tensor while loading. This reads the whole file once, so
    /// loading takes longer. Default: false.
    pub verify_tensors: bool,
}

/// The dimensions of one decoder layer. Pruned models have layers that differ.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct tinyllm_layer_dims {
    /// Number of query heads.
    pub n_heads: i32,
    /// Number of key/value heads; it divides n_heads.
    pub n_kv_heads: i32,
    /// Dimension of one attention head.
    pub head_dim: i32,
    /// Width of the feed-forward block (rows of the gate and up projections).
    pub ffn_dim: i32,
}

/// One 64-byte line of the buffer that contains a model loaded from memory.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

/// A copy of the caller's model bytes, 64-byte aligned like the tensors in a `.tllm` file.
struct AlignedBytes {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBytes {
    fn copy_of(bytes: &[u8]) -> FfiResult<AlignedBytes> {
        let count = bytes.len().div_ceil(64);
        let mut lines = Vec::new();
        lines.try_reserve_exact(count).map_err(|_| {
            FfiError::new(tinyllm_status::TINYLLM_STATUS_OUT_OF_MEMORY, format!("cannot allocate {} bytes for a copy of the model; free memory or load from a path, which maps the file instead", bytes.len()))
        })?;
        lines.resize(count, Line([0; 64]));
        let mut aligned = AlignedBytes { lines, len: bytes.len() };
        aligned.as_mut_bytes().copy_from_slice(bytes);
        Ok(aligned)
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `lines` contains `lines.len() * 64 >= len` initialized bytes (Line is plain bytes
        // without padding), and the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    fn as_mut_bytes(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// An open model and what the C API derives from it. Shared through an `Arc` by the model
/// handle and every context created from it.
pub(crate) struct LoadedModel {
    // Field order matters: fields drop in declaration order, so `model`, which may borrow
    // `_bytes`, is dropped before `_bytes`.
    pub(crate) model: Model<'static>,
    tokenizer: OnceLock<Result<Tokenizer, FfiError>>,
    name: CString,
    _bytes: Option<AlignedBytes>,
}

// The model is read by many threads at once: assert at compile time that sharing it is sound.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LoadedModel>();
};

impl LoadedModel {
    fn new(model: Model<'static>, bytes: Option<AlignedBytes>) -> LoadedModel {
        let name = model.metadata().name.clone().unwrap_or_default().replace('\0', "?");
        LoadedModel { name: CString::new(name).unwrap_or_default(), model, tokenizer: OnceLock::new(), _bytes: bytes }
    }

    /// Returns the tokenizer, loading it on first use, or the reason the model has none.
    pub(crate) fn tokenizer(&self) -> FfiResult<&Tokenizer> {
        let loaded = self.tokenizer.get_or_init(|| {
            if self.model.tokenizer_json().is_empty() {
                return Err(FfiError::new(
                    tinyllm_status::TINYLLM_STATUS_UNSUPPORTED,
                    "the model file has no tokenizer section; convert it again with its tokenizer.json, or pass token ids directly",
                ));
            }
            Tokenizer::from_model(&self.model).map_err(FfiError::from)
        });
        loaded.as_ref().map_err(Clone::clone)
    }

    pub(crate) fn vocab_size(&self) -> u32 {
        self.model.metadata().vocab_size
    }

    pub(crate) fn is_eos(&self, token: u32) -> bool {
        self.model.metadata().eos_token_ids.contains(&token)
    }
}

/// An open model: weights (memory-mapped or copied), metadata and tokenizer. Opaque.
pub struct tinyllm_model {
    pub(crate) inner: Arc<LoadedModel>,
}

/// Returns the default model parameters: tensor checksums not verified.
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_model_default_params() -> tinyllm_model_params {
    tinyllm_model_params { verify_tensors: false }
}

fn open_options(params: *const tinyllm_model_params) -> OpenOptions {
    // SAFETY: the C contract of the load functions: `params` is NULL or points to a valid struct.
    let params = unsafe { params.as_ref() }.copied().unwrap_or_else(|| tinyllm_model_default_params());
    OpenOptions { verify_tensors: params.verify_tensors }
}

/// Loads the .tllm file at `path` by mapping it into memory read-only.
///
/// `params` may be NULL for the defaults. On success stores a new model in `*model`, which the
/// caller frees with tinyllm_model_free(); on failure stores NULL there. The file must not be
/// truncated or rewritten in place while the model or any of its contexts exist (replacing it
/// by renaming a new file over it is safe).
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT (NULL path or model; on systems other
/// than Unix, a path that is not UTF-8), IO (cannot open or map), INVALID_MODEL, UNSUPPORTED.
///
/// # Safety
/// `path` is a NUL-terminated string; `params` is NULL or valid; `model` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_load(path: *const c_char, params: *const tinyllm_model_params, model: *mut *mut tinyllm_model) -> tinyllm_status {
    guard(|| {
        // SAFETY: `model` is valid for a write by this function's contract.
        let out = unsafe { Out::new(model, "model") }?;
        out_null(model);
        // SAFETY: `path` is NULL or NUL-terminated by this function's contract.
        let path = unsafe { args::c_path(path, "path") }?;
        let opened = Model::open_with(path, open_options(params))?;
        out.write(Box::into_raw(Box::new(tinyllm_model { inner: Arc::new(LoadedModel::new(opened, None)) })));
        Ok(())
    })
}

/// Loads a .tllm model held in memory, `size` bytes at `data`.
///
/// The bytes are copied into a new 64-byte-aligned buffer that the model owns, so `data` may be
/// freed or reused as soon as this returns and needs no particular alignment. `params` may be
/// NULL for the defaults. On success stores a new model in `*model`, which the caller frees with
/// tinyllm_model_free(); on failure stores NULL there.
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT (NULL data with a non-zero size, NULL
/// model), OUT_OF_MEMORY (no room for the copy), INVALID_MODEL, UNSUPPORTED.
///
/// # Safety
/// `data` is NULL or points to `size` readable bytes; `params` is NULL or valid; `model` is
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_load_from_memory(
    data: *const c_void,
    size: usize,
    params: *const tinyllm_model_params,
    model: *mut *mut tinyllm_model,
) -> tinyllm_status {
    guard(|| {
        // SAFETY: `model` is valid for a write by this function's contract.
        let out = unsafe { Out::new(model, "model") }?;
        out_null(model);
        // SAFETY: `data` points to `size` readable bytes by this function's contract.
        let source = unsafe { args::array(data.cast::<u8>(), size, "data") }?;
        let bytes = AlignedBytes::copy_of(source)?;
        // SAFETY: the slice points into the heap allocation of `bytes.lines`, which never moves
        // or changes: `bytes` is moved (not its allocation) into the LoadedModel below and never
        // mutated again. LoadedModel declares `model` before `_bytes`, so the model that borrows
        // the slice is dropped first, and nothing in the model hands out the 'static lifetime.
        let view: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &'static [u8]>(bytes.as_bytes()) };
        let opened = Model::from_bytes_with(view, open_options(params))?;
        out.write(Box::into_raw(Box::new(tinyllm_model { inner: Arc::new(LoadedModel::new(opened, Some(bytes))) })));
        Ok(())
    })
}

/// Stores NULL in a model output pointer already checked by `Out::new`, so that it is NULL on failure.
fn out_null(model: *mut *mut tinyllm_model) {
    // SAFETY: the pointer was checked non-NULL and aligned by `Out::new`, and the caller's
    // contract makes it valid for writes.
    unsafe { model.write(std::ptr::null_mut()) }
}

/// Frees a model handle. NULL is ignored.
///
/// Contexts created from the model hold their own reference to it, so they stay usable after
/// this call. The weights are released when the model and all its contexts are freed. Strings
/// returned by getters of this model become invalid.
///
/// Thread safety: any thread, but no other call may be using this handle at the same time.
/// Errors: none.
///
/// # Safety
/// `model` is NULL or a handle from a load function that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_free(model: *mut tinyllm_model) {
    guard(|| {
        if !model.is_null() {
            // SAFETY: a live handle made by Box::into_raw in a load function, freed only once.
            drop(unsafe { Box::from_raw(model) });
        }
        Ok(())
    });
}

/// Runs a getter on a model handle; on NULL stores the last error and returns `fallback`.
fn get<T>(model: *const tinyllm_model, fallback: T, body: impl FnOnce(&LoadedModel) -> FfiResult<T>) -> T {
    guard_value(fallback, || {
        // SAFETY: the C contract of every getter: `model` is NULL or a live handle.
        let handle = unsafe { args::handle(model, "model") }?;
        body(&handle.inner)
    })
    .0
}

/// Returns the architecture name ("llama", "qwen2" or "qwen3"), a static string, or NULL when
/// `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_architecture(model: *const tinyllm_model) -> *const c_char {
    get(model, std::ptr::null(), |m| {
        Ok(match m.model.metadata().architecture {
            Architecture::Llama => c"llama".as_ptr(),
            Architecture::Qwen2 => c"qwen2".as_ptr(),
            Architecture::Qwen3 => c"qwen3".as_ptr(),
        })
    })
}

/// Returns the human-readable model name, "" when the file has none, or NULL when `model` is
/// NULL. The string is owned by the model and valid until tinyllm_model_free(model).
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_name(model: *const tinyllm_model) -> *const c_char {
    get(model, std::ptr::null(), |m| Ok(m.name.as_ptr()))
}

/// Returns the number of weights (elements of all tensors), or 0 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_n_params(model: *const tinyllm_model) -> u64 {
    get(model, 0, |m| Ok(m.model.parameter_count()))
}

/// Returns the size of the model file in bytes, or 0 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_file_size(model: *const tinyllm_model) -> u64 {
    get(model, 0, |m| Ok(m.model.file_size() as u64))
}

/// Returns the vocabulary size (rows of the embedding and output matrices), or -1 when `model`
/// is NULL. Valid token ids are 0 to n_vocab - 1.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_n_vocab(model: *const tinyllm_model) -> i32 {
    // Metadata validation caps every dimension at 2^24, so these casts cannot overflow.
    get(model, -1, |m| Ok(m.vocab_size() as i32))
}

/// Returns the longest context the model was trained for, in tokens, or -1 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_max_context(model: *const tinyllm_model) -> i32 {
    get(model, -1, |m| Ok(i32::try_from(m.model.metadata().max_context).unwrap_or(i32::MAX)))
}

/// Returns the number of decoder layers, or -1 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_n_layers(model: *const tinyllm_model) -> i32 {
    get(model, -1, |m| Ok(m.model.metadata().layers.len() as i32))
}

/// Returns the width of the residual stream (embedding size), or -1 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_hidden_dim(model: *const tinyllm_model) -> i32 {
    get(model, -1, |m| Ok(m.model.metadata().hidden_dim as i32))
}

/// Stores the dimensions of decoder layer `layer` (0 to n_layers - 1) in `*dims`.
///
/// Thread safety: any thread. Errors: INVALID_ARGUMENT (NULL model or dims, layer out of range).
///
/// # Safety
/// `model` is NULL or a live handle; `dims` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_layer_dims(model: *const tinyllm_model, layer: i32, dims: *mut tinyllm_layer_dims) -> tinyllm_status {
    guard(|| {
        // SAFETY: `model` is NULL or a live handle by this function's contract.
        let handle = unsafe { args::handle(model, "model") }?;
        // SAFETY: `dims` is NULL or valid for a write by this function's contract.
        let out = unsafe { Out::new(dims, "dims") }?;
        let layers = &handle.inner.model.metadata().layers;
        let found = usize::try_from(layer).ok().and_then(|index| layers.get(index)).ok_or_else(|| {
            FfiError::invalid(format!("layer {layer} does not exist; the model has {} layers, numbered from 0", layers.len()))
        })?;
        out.write(tinyllm_layer_dims {
            n_heads: found.n_heads as i32,
            n_kv_heads: found.n_kv_heads as i32,
            head_dim: found.head_dim as i32,
            ffn_dim: found.ffn_dim as i32,
        });
        Ok(())
    })
}

/// Returns the beginning-of-sequence token id, or -1 when the model has none or `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_bos_token(model: *const tinyllm_model) -> tinyllm_token {
    get(model, -1, |m| Ok(m.model.metadata().bos_token_id.map_or(-1, |id| id as i32)))
}

/// Returns how many end-of-sequence tokens the model has (generation stops at any of them), or
/// -1 when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_n_eos_tokens(model: *const tinyllm_model) -> i32 {
    get(model, -1, |m| Ok(m.model.metadata().eos_token_ids.len() as i32))
}

/// Returns end-of-sequence token number `index` (0 to n_eos_tokens - 1), or -1 when `index` is
/// out of range or `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model, index out of range (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_eos_token(model: *const tinyllm_model, index: i32) -> tinyllm_token {
    get(model, -1, |m| {
        let ids = &m.model.metadata().eos_token_ids;
        usize::try_from(index).ok().and_then(|i| ids.get(i)).map(|&id| id as i32).ok_or_else(|| {
            FfiError::invalid(format!("end-of-sequence token index {index} does not exist; the model has {} such tokens", ids.len()))
        })
    })
}

/// Returns whether `token` is one of the model's end-of-sequence tokens; false when `model` is
/// NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_is_eos(model: *const tinyllm_model, token: tinyllm_token) -> bool {
    get(model, false, |m| Ok(u32::try_from(token).is_ok_and(|id| m.is_eos(id))))
}

/// Returns whether the model has a chat template, so that tinyllm_chat_apply_template() can
/// work; false when `model` is NULL.
///
/// Thread safety: any thread. Errors: NULL model (last error set).
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn tinyllm_model_has_chat_template(model: *const tinyllm_model) -> bool {
    get(model, false, |m| Ok(m.model.metadata().tokenizer.chat_template.is_some()))
}
