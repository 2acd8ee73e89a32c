//! Checked conversions of C arguments: handles, strings, arrays, output pointers and caller
//! buffers. Each pointer is checked for NULL, alignment and length overflow here. Whether it
//! points to live memory cannot be checked, so that is the caller's contract.

use std::ffi::{c_char, CStr};

use crate::error::{tinyllm_status, FfiError, FfiResult};
use crate::tinyllm_token;

/// Borrows the object behind `ptr`, or fails when `ptr` is NULL.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that no other thread mutates during the borrow.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees that a non-NULL `ptr` points to a live, unaliased-for-writes T.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// Borrows the object behind `ptr` mutably, or fails when `ptr` is NULL.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that nothing else accesses during the borrow.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the caller guarantees exclusive access to a live T behind a non-NULL `ptr`.
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::null(name))
}

/// Reads a NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays unchanged during the borrow.
pub(crate) unsafe fn c_string<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    utf8(bytes, name)
}

/// Reads a NUL-terminated file path. On Unix a path is any sequence of bytes; elsewhere it
/// must be UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays unchanged during the borrow.
pub(crate) unsafe fn c_path<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a std::path::Path> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    #[cfg(unix)]
    let path = std::path::Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes));
    #[cfg(not(unix))]
    let path = std::path::Path::new(utf8(bytes, name)?);
    Ok(path)
}

/// Reads `len` bytes of UTF-8 text that need no terminating NUL. NULL is accepted when `len` is 0.
///
/// # Safety
/// `ptr` is NULL or points to at least `len` readable bytes that stay unchanged during the borrow.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, len: usize, name: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract; c_char and u8 have the same size and alignment.
    let bytes = unsafe { array(ptr.cast::<u8>(), len, name) }?;
    utf8(bytes, name)
}

fn utf8<'a>(bytes: &'a [u8], name: &str) -> FfiResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|error| {
        FfiError::invalid(format!(
            "{name} is not valid UTF-8: invalid byte at offset {} of {}; pass UTF-8 text",
            error.valid_up_to(),
            bytes.len()
        ))
    })
}

/// Borrows an array of `len` elements. NULL is accepted when `len` is 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` initialized elements that stay unchanged during the borrow.
pub(crate) unsafe fn array<'a, T>(ptr: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::invalid(format!("{name} is NULL but its length is {len}; pass an array or a length of 0")));
    }
    if !ptr.is_aligned() {
        return Err(FfiError::invalid(format!(
            "{name} at address {ptr:p} is not aligned to {} bytes, as its element type requires",
            std::mem::align_of::<T>()
        )));
    }
    if len.checked_mul(std::mem::size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
        return Err(FfiError::invalid(format!("length {len} of {name} is larger than any array can be")));
    }
    // SAFETY: non-NULL, aligned, size within isize::MAX (checked above), and `len` initialized
    // elements by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Converts C token ids to the runtime's, checking each against the vocabulary.
pub(crate) fn token_ids(tokens: &[tinyllm_token], vocab_size: u32, name: &str) -> FfiResult<Vec<u32>> {
    tokens
        .iter()
        .enumerate()
        .map(|(index, &token)| match u32::try_from(token) {
            Ok(id) if id < vocab_size => Ok(id),
            _ => Err(FfiError::new(
                tinyllm_status::TINYLLM_STATUS_INVALID_TOKEN,
                format!("{name}[{index}] is token id {token}, outside the vocabulary of {vocab_size} tokens; valid ids are 0 to {}", vocab_size - 1),
            )),
        })
        .collect()
}

/// A checked, non-NULL output pointer.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `ptr` for NULL and alignment.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for a write of one `T` until [`Out::write`] is called.
    pub(crate) unsafe fn new(ptr: *mut T, name: &str) -> FfiResult<Out<T>> {
        if ptr.is_null() {
            return Err(FfiError::null(name));
        }
        if !ptr.is_aligned() {
            return Err(FfiError::invalid(format!("{name} at address {ptr:p} is not aligned to {} bytes", std::mem::align_of::<T>())));
        }
        Ok(Out(ptr))
    }

    /// Stores `value` without reading or dropping what was there.
    pub(crate) fn write(self, value: T) {
        // SAFETY: checked non-NULL and aligned in `new`, whose caller promised validity for writes.
        unsafe { self.0.write(value) }
    }
}

/// A caller's buffer of `capacity` elements, which may be NULL when `capacity` is 0.
pub(crate) struct Buffer<T> {
    ptr: *mut T,
    capacity: usize,
}

impl<T: Copy> Buffer<T> {
    /// Checks `ptr` and `capacity`.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writes of `capacity` elements until the buffer is filled.
    pub(crate) unsafe fn new(ptr: *mut T, capacity: usize, name: &str) -> FfiResult<Buffer<T>> {
        if ptr.is_null() && capacity > 0 {
            return Err(FfiError::invalid(format!("{name} is NULL but its capacity is {capacity}; pass a buffer or a capacity of 0")));
        }
        if !ptr.is_null() && !ptr.is_aligned() {
            return Err(FfiError::invalid(format!("{name} at address {ptr:p} is not aligned to {} bytes", std::mem::align_of::<T>())));
        }
        if capacity.checked_mul(std::mem::size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
            return Err(FfiError::invalid(format!("capacity {capacity} of {name} is larger than any buffer can be")));
        }
        Ok(Buffer { ptr, capacity })
    }

    /// Copies `items` into the buffer and stores their count in `count`. When they do not fit,
    /// stores the count, writes nothing and fails with `TINYLLM_STATUS_BUFFER_TOO_SMALL`.
    pub(crate) fn fill(self, items: &[T], count: Out<usize>, what: &str) -> FfiResult<()> {
        count.write(items.len());
        if items.len() > self.capacity {
            return Err(FfiError::new(
                tinyllm_status::TINYLLM_STATUS_BUFFER_TOO_SMALL,
                format!("the buffer holds {} {what} but {} are needed; call again with a capacity of at least {}", self.capacity, items.len(), items.len()),
            ));
        }
        if !items.is_empty() {
            // SAFETY: `items.len() <= capacity`, the buffer is valid for `capacity` writes (the
            // contract of `new`), and a caller's buffer cannot overlap our own `items`.
            unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), self.ptr, items.len()) };
        }
        Ok(())
    }
}

impl Buffer<c_char> {
    /// Copies `text` and a terminating NUL into the buffer and stores the text's length in bytes,
    /// without the NUL, in `length`. When `length + 1` bytes do not fit, stores the length,
    /// writes nothing and fails with `TINYLLM_STATUS_BUFFER_TOO_SMALL`.
    pub(crate) fn fill_text(self, text: &str, length: Out<usize>) -> FfiResult<()> {
        length.write(text.len());
        let needed = text.len() + 1;
        if needed > self.capacity {
            return Err(FfiError::new(
                tinyllm_status::TINYLLM_STATUS_BUFFER_TOO_SMALL,
                format!(
                    "the buffer holds {} bytes but the text needs {needed} ({} bytes and the terminating NUL); call again with a capacity of at least {needed}",
                    self.capacity,
                    text.len()
                ),
            ));
        }
        // SAFETY: `needed <= capacity`, so the buffer is non-NULL and valid for `needed` writes
        // by the contract of `new`; a caller's buffer cannot overlap our own `text`.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), self.ptr, text.len());
            self.ptr.add(text.len()).write(0);
        }
        Ok(())
    }
}
