//! Bounds-checked little-endian reads over the bytes of a GGUF file.

use super::error::GgufError;

/// A read position in a byte slice. Every read checks the remaining length first and reports
/// the field, its offset and the missing byte count on failure.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    /// Byte offset of the next read.
    pub(crate) fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left after the read position.
    pub(crate) fn remaining(&self) -> u64 {
        self.bytes.len().saturating_sub(self.pos) as u64
    }

    /// Consumes `len` bytes, or fails without moving when fewer remain.
    pub(crate) fn take(
        &mut self,
        len: u64,
        field: &dyn Fn() -> String,
    ) -> Result<&'a [u8], GgufError> {
        let truncated = || GgufError::Truncated {
            field: field(),
            offset: self.offset(),
            needed: len,
            available: self.remaining(),
        };
        if len > self.remaining() {
            return Err(truncated());
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .ok_or_else(truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &dyn Fn() -> String,
    ) -> Result<[u8; N], GgufError> {
        let start = self.offset();
        let slice = self.take(N as u64, field)?;
        <[u8; N]>::try_from(slice).map_err(|_| GgufError::Truncated {
            field: field(),
            offset: start,
            needed: N as u64,
            available: slice.len() as u64,
        })
    }

    pub(crate) fn u8(&mut self, field: &dyn Fn() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32, GgufError> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, field: &dyn Fn() -> String) -> Result<u64, GgufError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// Reads a GGUF string: a u64 byte length, then that many bytes of UTF-8.
    pub(crate) fn string(&mut self, field: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("length of {}", field()))?;
        let bytes_offset = self.offset();
        let bytes = self.take(len, field)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_owned()),
            Err(source) => Err(GgufError::InvalidUtf8 {
                field: field(),
                offset: bytes_offset,
                source,
            }),
        }
    }
}

/// Decodes consecutive little-endian values of `N` bytes each; a trailing partial value is ignored.
pub(crate) fn decode_le<T, const N: usize>(bytes: &[u8], from_le: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut raw = [0u8; N];
            raw.copy_from_slice(chunk);
            from_le(raw)
        })
        .collect()
}
