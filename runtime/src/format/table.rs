//! The tensor table: one variable-length little-endian record per tensor.
//!
//! Record layout: `name_len: u16`, `name: [u8; name_len]` (UTF-8), `dtype: u16`, `n_dims: u8`,
//! `dims: [u64; n_dims]` (row-major, outermost first), `offset: u64` (from the start of the data
//! section), `length: u64` (bytes), `crc32: u32` (of the tensor's bytes).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::DType;
use crate::error::{ErrorKind, Result};

/// Maximum number of dimensions of a tensor.
pub const MAX_DIMS: usize = 4;

/// Maximum length of a tensor name in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Tensor name, for example `layers.3.attn_q`.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, outermost dimension first; a matrix is `[rows, columns]` = `[out, in]`.
    pub shape: Vec<u64>,
    /// Offset of the first byte from the start of the data section.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// CRC-32 of the tensor's bytes.
    pub crc32: u32,
}

impl TensorEntry {
    /// Number of elements, or `None` when the product of the dimensions overflows.
    pub fn element_count(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
    }

    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.dtype.code().to_le_bytes());
        out.push(self.shape.len() as u8);
        for dim in &self.shape {
            out.extend_from_slice(&dim.to_le_bytes());
        }
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
    }

    /// Size of the encoded record in bytes.
    pub fn encoded_len(&self) -> usize {
        2 + self.name.len() + 2 + 1 + 8 * self.shape.len() + 8 + 8 + 4
    }
}

/// A cursor over the table bytes that turns a short read into a `Truncated` error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.at;
        if n > available {
            return Err(ErrorKind::Truncated {
                what: format!("tensor table ({what} at table offset {})", self.at),
                needed: n as u64,
                available: available as u64,
            }
            .into());
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(word))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(word))
    }
}

/// Decodes `count` records from the table section and checks each one against the data section:
/// known type, shape and length agree, range inside the data section, absolute offset aligned.
///
/// `data_offset` and `data_len` describe the data section; `count` comes from the header and is
/// bounded by the table length before any allocation.
pub fn parse_table(table: &[u8], count: u32, data_offset: u64, data_len: u64) -> Result<Vec<TensorEntry>> {
    // The smallest record (empty name, no dimensions) is 25 bytes.
    let min_record = 25u64;
    if (count as u64).saturating_mul(min_record) > table.len() as u64 {
        return Err(ErrorKind::InvalidValue {
            field: "header.tensor_count".to_string(),
            value: count.to_string(),
            expected: format!("at most {} records in a table of {} bytes", table.len() as u64 / min_record, table.len()),
        }
        .into());
    }
    let mut reader = Reader { bytes: table, at: 0 };
    let mut entries = Vec::with_capacity(count as usize);
    for index in 0..count {
        let entry = parse_record(&mut reader, index)?;
        check_entry(&entry, data_offset, data_len)?;
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_record(reader: &mut Reader<'_>, index: u32) -> Result<TensorEntry> {
    let name_len = reader.u16("name length")? as usize;
    if name_len > MAX_NAME_LEN {
        return Err(ErrorKind::InvalidValue {
            field: format!("tensor table record {index}: name length"),
            value: name_len.to_string(),
            expected: format!("at most {MAX_NAME_LEN} bytes"),
        }
        .into());
    }
    let name_bytes = reader.take(name_len, "name")?;
    let name = core::str::from_utf8(name_bytes)
        .map_err(|_| ErrorKind::InvalidValue {
            field: format!("tensor table record {index}: name"),
            value: format!("{name_bytes:02x?}"),
            expected: "UTF-8 text".to_string(),
        })?
        .to_string();
    let code = reader.u16("dtype")?;
    let dtype = DType::from_code(code).ok_or_else(|| ErrorKind::UnsupportedDtype {
        tensor: name.clone(),
        dtype: format!("code {code} (this runtime reads 0 = f32, 1 = f16, 2 = bf16 and the quantized codes 16-20, plain or with row interleave 4)"),
    })?;
    let n_dims = reader.u8("dimension count")? as usize;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(ErrorKind::InvalidValue {
            field: format!("tensor {name}: dimension count"),
            value: n_dims.to_string(),
            expected: format!("1 to {MAX_DIMS}"),
        }
        .into());
    }
    let mut shape = Vec::with_capacity(n_dims);
    for _ in 0..n_dims {
        shape.push(reader.u64("dimension")?);
    }
    let offset = reader.u64("offset")?;
    let length = reader.u64("length")?;
    let crc32 = reader.u32("checksum")?;
    Ok(TensorEntry { name, dtype, shape, offset, length, crc32 })
}

fn check_entry(entry: &TensorEntry, data_offset: u64, data_len: u64) -> Result<()> {
    let expected_len = entry.dtype.byte_len(&entry.shape);
    if expected_len != Some(entry.length) {
        return Err(ErrorKind::InvalidValue {
            field: format!("tensor {}: length", entry.name),
            value: entry.length.to_string(),
            expected: match expected_len {
                Some(len) => format!("{len} bytes for shape {:?} of {}", entry.shape, entry.dtype),
                None if entry.dtype.is_quantized() && entry.shape.len() != 2 => format!("a matrix shape for quantized type {}, not {:?}", entry.dtype, entry.shape),
                None => format!("a shape whose element count fits in 64 bits, not {:?}", entry.shape),
            },
        }
        .into());
    }
    let end = entry.offset.checked_add(entry.length);
    if end.map_or(true, |end| end > data_len) {
        return Err(ErrorKind::OutOfBounds {
            what: format!("tensor {}", entry.name),
            offset: entry.offset,
            length: entry.length,
            limit: data_len,
        }
        .into());
    }
    let absolute = data_offset + entry.offset;
    if absolute % super::TENSOR_ALIGNMENT != 0 {
        return Err(ErrorKind::Misaligned {
            tensor: entry.name.clone(),
            offset: absolute,
            alignment: super::TENSOR_ALIGNMENT,
        }
        .into());
    }
    Ok(())
}
