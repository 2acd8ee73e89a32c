//! Status codes, the thread-local last error, and the guard that keeps panics inside Rust.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tinyllm::ErrorKind;

/// Result of a call. `TINYLLM_STATUS_OK` (0) is success. Every other value is a failure, and
/// `tinyllm_last_error()` on the same thread returns its message. Values are never renumbered or
/// reused, and new ones are added at the end, so treat a value you do not know as a failure.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tinyllm_status {
    /// Success.
    TINYLLM_STATUS_OK = 0,
    /// An argument is NULL, out of range, not valid UTF-8, or inconsistent with another one.
    TINYLLM_STATUS_INVALID_ARGUMENT = 1,
    /// A file could not be opened, mapped or read.
    TINYLLM_STATUS_IO = 2,
    /// The data is not a valid .tllm model: wrong magic bytes, truncated, checksum mismatch,
    /// invalid metadata, a missing tensor or a tensor of the wrong shape.
    TINYLLM_STATUS_INVALID_MODEL = 3,
    /// The model is valid but needs something this library or this model does not have: a newer
    /// format version, an unknown architecture or data type, a chat template or a tokenizer.
    TINYLLM_STATUS_UNSUPPORTED = 4,
    /// The tokens do not fit in the positions left in the context.
    TINYLLM_STATUS_CONTEXT_FULL = 5,
    /// The caller's buffer is too small. The size it needs was stored in the size output and
    /// nothing was written to the buffer.
    TINYLLM_STATUS_BUFFER_TOO_SMALL = 6,
    /// The tokenizer or the chat template failed.
    TINYLLM_STATUS_TOKENIZER = 7,
    /// The abort callback returned true.
    TINYLLM_STATUS_ABORTED = 8,
    /// A token id is negative or not below the vocabulary size.
    TINYLLM_STATUS_INVALID_TOKEN = 9,
    /// The call does not fit the handle's current state, for example logits requested before any
    /// evaluation, or any call on a context after a TINYLLM_STATUS_INTERNAL failure.
    TINYLLM_STATUS_INVALID_STATE = 10,
    /// A buffer the size of the model could not be allocated.
    TINYLLM_STATUS_OUT_OF_MEMORY = 11,
    /// A bug in tinyllm: an internal panic was caught at the API boundary. The message names it.
    /// The context involved is unusable afterwards and must be freed.
    TINYLLM_STATUS_INTERNAL = 12,
}

use tinyllm_status::*;

/// The text `tinyllm_status_string` returns for each status.
pub(crate) fn status_text(status: i32) -> &'static CStr {
    match status {
        0 => c"ok",
        1 => c"invalid argument",
        2 => c"input/output error",
        3 => c"invalid model",
        4 => c"unsupported",
        5 => c"context full",
        6 => c"buffer too small",
        7 => c"tokenizer error",
        8 => c"aborted",
        9 => c"invalid token",
        10 => c"invalid state",
        11 => c"out of memory",
        12 => c"internal error",
        _ => c"unknown status",
    }
}

/// A failure on its way to the C caller: the status to return and the message to store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FfiError {
    pub(crate) status: tinyllm_status,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: tinyllm_status, message: impl Into<String>) -> FfiError {
        FfiError { status, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> FfiError {
        FfiError::new(TINYLLM_STATUS_INVALID_ARGUMENT, message)
    }

    /// Creates the error for a NULL pointer argument named `name`.
    pub(crate) fn null(name: &str) -> FfiError {
        FfiError::invalid(format!("{name} is NULL; pass a valid pointer"))
    }
}

/// Maps a runtime error to a status. `tinyllm::ErrorKind` is non-exhaustive, so a kind added
/// after this was written maps to `TINYLLM_STATUS_INTERNAL` until it gets its own arm.
impl From<tinyllm::Error> for FfiError {
    fn from(error: tinyllm::Error) -> FfiError {
        let status = match error.kind() {
            ErrorKind::BadMagic { .. }
            | ErrorKind::Truncated { .. }
            | ErrorKind::OutOfBounds { .. }
            | ErrorKind::Misaligned { .. }
            | ErrorKind::ChecksumMismatch { .. }
            | ErrorKind::InvalidMetadata { .. }
            | ErrorKind::InvalidValue { .. }
            | ErrorKind::MissingTensor { .. }
            | ErrorKind::ShapeMismatch { .. }
            | ErrorKind::NonFinite { .. } => TINYLLM_STATUS_INVALID_MODEL,
            ErrorKind::UnsupportedVersion { .. } | ErrorKind::UnknownArchitecture { .. } | ErrorKind::UnsupportedDtype { .. } => {
                TINYLLM_STATUS_UNSUPPORTED
            }
            ErrorKind::InvalidToken { .. } => TINYLLM_STATUS_INVALID_TOKEN,
            ErrorKind::ContextFull { .. } => TINYLLM_STATUS_CONTEXT_FULL,
            ErrorKind::Tokenizer { .. } => TINYLLM_STATUS_TOKENIZER,
            ErrorKind::Io { .. } => TINYLLM_STATUS_IO,
            _ => TINYLLM_STATUS_INTERNAL,
        };
        FfiError::new(status, error.to_string())
    }
}

pub(crate) type FfiResult<T> = Result<T, FfiError>;

thread_local! {
    /// The message of the last failed call on this thread, NUL-terminated for C.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error. Interior NUL bytes, which C cannot represent
/// inside a string, become `?`.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "?")).unwrap_or_default();
    // `try_with` fails only after this thread's locals were destroyed, as the thread exits,
    // and the message is dropped then.
    let _ = LAST_ERROR.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = text;
        }
    });
}

/// Returns a pointer to this thread's last error message, or to an empty string.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| match cell.try_borrow() {
            // The pointer stays valid after the borrow ends: the CString's heap buffer is only
            // freed when `set_last_error` replaces it, which the C contract allows for.
            Ok(text) => text.as_ptr(),
            Err(_) => c"".as_ptr(),
        })
        .unwrap_or(c"".as_ptr())
}

/// Describes a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let detail = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "no message".to_string()
    };
    format!("internal error in tinyllm (a panic was caught at the C API boundary): {detail}; please report it with the call that caused it")
}

/// Runs `body`, turning its error or panic into a status and this thread's last error.
pub(crate) fn guard(body: impl FnOnce() -> FfiResult<()>) -> tinyllm_status {
    guard_value((), body).1
}

/// Runs `body` and returns its value and `TINYLLM_STATUS_OK`, or `fallback` and the failure's
/// status after storing its message as this thread's last error. A panic is a failure with
/// status `TINYLLM_STATUS_INTERNAL`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> FfiResult<T>) -> (T, tinyllm_status) {
    // AssertUnwindSafe: after a panic, the only state the caller can reach again is a context,
    // and context entry points mark it unusable (see `context::with_context`).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => (value, TINYLLM_STATUS_OK),
        Ok(Err(error)) => {
            set_last_error(&error.message);
            (fallback, error.status)
        }
        Err(payload) => {
            set_last_error(&panic_message(payload.as_ref()));
            (fallback, TINYLLM_STATUS_INTERNAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: last_error_ptr returns a NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn panic_becomes_internal_status() {
        let status = guard(|| panic!("deliberate test panic"));
        assert_eq!(status, TINYLLM_STATUS_INTERNAL);
        assert!(last_error().contains("deliberate test panic"), "last error: {}", last_error());
    }

    #[test]
    fn error_sets_status_and_message() {
        let status = guard(|| Err(FfiError::null("model")));
        assert_eq!(status, TINYLLM_STATUS_INVALID_ARGUMENT);
        assert_eq!(last_error(), "model is NULL; pass a valid pointer");
    }

    #[test]
    fn success_keeps_last_error() {
        set_last_error("earlier failure");
        assert_eq!(guard(|| Ok(())), TINYLLM_STATUS_OK);
        assert_eq!(last_error(), "earlier failure");
    }

    #[test]
    fn interior_nul_is_replaced() {
        set_last_error("a\0b");
        assert_eq!(last_error(), "a?b");
    }

    #[test]
    fn last_error_is_per_thread() {
        set_last_error("main thread");
        std::thread::spawn(|| assert_eq!(last_error(), "")).join().unwrap();
        assert_eq!(last_error(), "main thread");
    }

    #[test]
    fn every_status_has_text() {
        for code in 0..=TINYLLM_STATUS_INTERNAL as i32 {
            assert_ne!(status_text(code), c"unknown status", "status {code}");
        }
        assert_eq!(status_text(TINYLLM_STATUS_INTERNAL as i32 + 1), c"unknown status");
        assert_eq!(status_text(-1), c"unknown status");
    }
}
