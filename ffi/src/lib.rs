//! tinyllm-ffi: the C ABI of the tinyllm runtime, built as `libtinyllm.so` and `libtinyllm.a`.
//!
//! The C header `ffi/include/tinyllm.h` is generated from these definitions by cbindgen, and
//! the `header` test fails when the committed header differs from what the code exports. The
//! handles are [`tinyllm_model`] (an open model, shared by any number of contexts and threads),
//! [`tinyllm_context`] (one conversation) and [`tinyllm_sampler`] (token choice).
//!
//! Conventions of every entry point:
//! - No panic crosses the boundary: each call runs inside `catch_unwind`, and a panic becomes
//!   `TINYLLM_STATUS_INTERNAL` with a message.
//! - A failure returns a status (or a documented sentinel for getters) and stores a message in
//!   the calling thread's last error; NULL pointers are reported, never dereferenced.
//! - Ownership: the caller frees every handle it creates with the matching `_free` function;
//!   contexts keep their model alive through a reference count.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

// cbindgen writes the functions of these modules in this order.
mod args;
pub mod error;
pub mod model;
pub mod context;
pub mod tokenize;
pub mod sampler;
pub mod generate;

use std::ffi::c_char;

pub use context::{tinyllm_context, tinyllm_context_params};
pub use error::tinyllm_status;
pub use generate::{tinyllm_abort_callback, tinyllm_generate_result, tinyllm_stop_reason, tinyllm_token_callback};
pub use model::{tinyllm_layer_dims, tinyllm_model, tinyllm_model_params};
pub use sampler::{tinyllm_sampler, tinyllm_sampler_params};
pub use tokenize::tinyllm_chat_message;

/// Major version of the library. Equal to the Cargo package version.
pub const TINYLLM_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const TINYLLM_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const TINYLLM_VERSION_PATCH: u32 = 0;
/// Version of the binary interface, the number in the shared library's SONAME
/// (libtinyllm.so.0). It grows with every change that breaks programs built against an
/// earlier header: a removed or changed function, a renumbered value, a field added to a struct.
pub const TINYLLM_ABI_VERSION: u32 = 0;

/// A token id: 0 to n_vocab - 1. Functions that return a token use -1 for "none".
pub type tinyllm_token = i32;

/// Returns the library version as "MAJOR.MINOR.PATCH", a static string.
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Returns TINYLLM_ABI_VERSION of the library that is loaded. A program can compare it with the
/// TINYLLM_ABI_VERSION of the header it was built with.
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_abi_version() -> u32 {
    TINYLLM_ABI_VERSION
}

/// Returns a short static description of a status, such as "context full", or
/// "unknown status" for a value this version does not define.
///
/// Thread safety: any thread. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_status_string(status: i32) -> *const c_char {
    error::status_text(status).as_ptr()
}

/// Returns the message of the last failed call on the calling thread, or "" when no call on
/// this thread has failed. The message names the value involved and what to do.
///
/// The string belongs to the library and stays valid until the next failing tinyllm call on the
/// same thread or the thread's exit. Successful calls leave it unchanged, so read it only right
/// after a call returned a failure.
///
/// Thread safety: any thread; each thread has its own message. Errors: none.
#[no_mangle]
pub extern "C" fn tinyllm_last_error() -> *const c_char {
    error::last_error_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_cargo() {
        assert_eq!(TINYLLM_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(TINYLLM_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(TINYLLM_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        // SAFETY: tinyllm_version returns a static NUL-terminated string.
        let text = unsafe { std::ffi::CStr::from_ptr(tinyllm_version()) };
        assert_eq!(text.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
