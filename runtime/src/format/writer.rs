//! Writes `.tllm` files: the counterpart of the reader in [`crate::model`].

use std::io::{self, Seek, SeekFrom, Write};
use std::string::String;
use std::vec::Vec;

use super::header::{Header, Section, HEADER_SIZE, VERSION};
use super::{crc32, DType, Metadata, TensorEntry, TENSOR_ALIGNMENT};

/// A tensor to be written: its name, type and shape. Its bytes are produced on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorPlan {
    /// Tensor name.
    pub name: String,
    /// Element type of the bytes that will be supplied.
    pub dtype: DType,
    /// Shape, outermost dimension first.
    pub shape: Vec<u64>,
}

fn padding_to(offset: u64, alignment: u64) -> u64 {
    (alignment - offset % alignment) % alignment
}

/// Writes a complete `.tllm` file to `out`.
///
/// `tensor_bytes(i)` returns the little-endian bytes of `plans[i]`; it is called once per
/// tensor, in order, so that only one tensor is held in memory at a time. Returns the table
/// entries as written. The caller makes the write atomic (temporary file, then rename).
pub fn write_tllm<W, F>(
    mut out: W,
    metadata: &Metadata,
    tokenizer_json: &[u8],
    plans: &[TensorPlan],
    mut tensor_bytes: F,
) -> io::Result<Vec<TensorEntry>>
where
    W: Write + Seek,
    F: FnMut(usize) -> io::Result<Vec<u8>>,
{
    let metadata_json = metadata.to_json();

    // Lay out the data section from the shapes alone, so the table size is known up front.
    let mut entries = Vec::with_capacity(plans.len());
    let mut data_len = 0u64;
    for plan in plans {
        if plan.name.len() > super::table::MAX_NAME_LEN || plan.shape.is_empty() || plan.shape.len() > super::table::MAX_DIMS {
            return Err(invalid_input(format!(
                "tensor {}: names are limited to {} bytes and shapes to 1-{} dimensions (shape {:?})",
                plan.name,
                super::table::MAX_NAME_LEN,
                super::table::MAX_DIMS,
                plan.shape
            )));
        }
        let length = plan.dtype.byte_len(&plan.shape).ok_or_else(|| {
            invalid_input(format!("tensor {}: shape {:?} overflows or does not suit type {}", plan.name, plan.shape, plan.dtype))
        })?;
        data_len += padding_to(data_len, TENSOR_ALIGNMENT);
        entries.push(TensorEntry {
            name: plan.name.clone(),
            dtype: plan.dtype,
            shape: plan.shape.clone(),
            offset: data_len,
            length,
            crc32: 0,
        });
        data_len += length;
    }
    let table_len: u64 = entries.iter().map(|entry| entry.encoded_len() as u64).sum();

    let metadata_section = Section { offset: HEADER_SIZE as u64, len: metadata_json.len() as u64 };
    let tokenizer_section = Section { offset: metadata_section.end().unwrap_or(0), len: tokenizer_json.len() as u64 };
    let table_section = Section { offset: tokenizer_section.end().unwrap_or(0), len: table_len };
    let table_end = table_section.end().unwrap_or(0);
    let data_section = Section { offset: table_end + padding_to(table_end, TENSOR_ALIGNMENT), len: data_len };

    // Header and table are written twice: now as placeholders, at the end with checksums.
    out.write_all(&[0u8; HEADER_SIZE])?;
    out.write_all(&metadata_json)?;
    out.write_all(tokenizer_json)?;
    out.write_all(&vec![0u8; table_len as usize])?;
    out.write_all(&vec![0u8; (data_section.offset - table_end) as usize])?;

    let mut position = 0u64;
    for (i, entry) in entries.iter_mut().enumerate() {
        let bytes = tensor_bytes(i)?;
        if bytes.len() as u64 != entry.length {
            return Err(invalid_input(format!(
                "tensor {}: {} bytes supplied, {} expected for shape {:?} of {}",
                entry.name,
                bytes.len(),
                entry.length,
                entry.shape,
                entry.dtype
            )));
        }
        let pad = entry.offset - position;
        out.write_all(&vec![0u8; pad as usize])?;
        out.write_all(&bytes)?;
        entry.crc32 = crc32(&bytes);
        position = entry.offset + entry.length;
    }

    let mut table = Vec::with_capacity(table_len as usize);
    for entry in &entries {
        entry.encode(&mut table);
    }
    let mut header = Header {
        version: VERSION,
        flags: 0,
        metadata: metadata_section,
        tokenizer: tokenizer_section,
        tensor_table: table_section,
        data: data_section,
        tensor_count: entries.len() as u32,
        metadata_checksum: 0,
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header.encode()[..super::header::CHECKSUM_OFFSET]);
    hasher.update(&metadata_json);
    hasher.update(tokenizer_json);
    hasher.update(&table);
    header.metadata_checksum = hasher.finalize();

    out.seek(SeekFrom::Start(table_section.offset))?;
    out.write_all(&table)?;
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&header.encode())?;
    out.seek(SeekFrom::End(0))?;
    out.flush()?;
    Ok(entries)
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
