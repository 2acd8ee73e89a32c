//! The fixed 96-byte header at the start of a `.tllm` file.

use alloc::format;
use alloc::string::ToString;

use crate::error::{ErrorKind, Result};

/// The first four bytes of every `.tllm` file.
pub const MAGIC: [u8; 4] = *b"TLLM";

/// The format version this runtime reads and writes.
pub const VERSION: u32 = 1;

/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 96;

/// Byte offset of the metadata checksum inside the header. The checksum covers the header bytes
/// before it, then the metadata, tokenizer and tensor-table sections.
pub const CHECKSUM_OFFSET: usize = 84;

/// A byte range of the file: `offset` from the start of the file, `len` bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Section {
    /// Start, in bytes from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Section {
    /// The end offset, or `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len)
    }
}

/// The decoded header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Reserved flags; version 1 writes 0 and readers ignore unknown bits.
    pub flags: u32,
    /// The metadata section: UTF-8 JSON.
    pub metadata: Section,
    /// The tokenizer section: the Hugging Face `tokenizer.json` bytes (may be empty).
    pub tokenizer: Section,
    /// The tensor table section.
    pub tensor_table: Section,
    /// The tensor data section; every tensor lies inside it.
    pub data: Section,
    /// Number of entries in the tensor table.
    pub tensor_count: u32,
    /// CRC-32 over header bytes 0..84 and the metadata, tokenizer and tensor-table sections.
    pub metadata_checksum: u32,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl Header {
    /// Decodes and checks the header at the start of `file`: magic, version, and that every
    /// section lies inside the file in the documented order.
    pub fn parse(file: &[u8]) -> Result<Header> {
        if file.len() < 4 {
            return Err(ErrorKind::Truncated {
                what: "header".to_string(),
                needed: HEADER_SIZE as u64,
                available: file.len() as u64,
            }
            .into());
        }
        let mut found = [0u8; 4];
        found.copy_from_slice(&file[..4]);
        if found != MAGIC {
            return Err(ErrorKind::BadMagic { found }.into());
        }
        if file.len() < HEADER_SIZE {
            return Err(ErrorKind::Truncated {
                what: "header".to_string(),
                needed: HEADER_SIZE as u64,
                available: file.len() as u64,
            }
            .into());
        }
        let version = read_u32(file, 4);
        if version != VERSION {
            return Err(ErrorKind::UnsupportedVersion { found: version, supported: VERSION }.into());
        }
        let header_size = read_u32(file, 8);
        if header_size as usize != HEADER_SIZE {
            return Err(ErrorKind::InvalidValue {
                field: "header.header_size".to_string(),
                value: header_size.to_string(),
                expected: format!("{HEADER_SIZE} for format version {VERSION}"),
            }
            .into());
        }
        let section = |at: usize| Section { offset: read_u64(file, at), len: read_u64(file, at + 8) };
        let header = Header {
            version,
            flags: read_u32(file, 12),
            metadata: section(16),
            tokenizer: section(32),
            tensor_table: section(48),
            data: section(64),
            tensor_count: read_u32(file, 80),
            metadata_checksum: read_u32(file, CHECKSUM_OFFSET),
        };
        header.check_sections(file.len() as u64)?;
        Ok(header)
    }

    /// Checks that the sections follow each other without overlap and end inside the file.
    fn check_sections(&self, file_len: u64) -> Result<()> {
        let sections = [
            ("metadata section", self.metadata),
            ("tokenizer section", self.tokenizer),
            ("tensor table section", self.tensor_table),
            ("tensor data section", self.data),
        ];
        let mut previous_end = HEADER_SIZE as u64;
        for (what, section) in sections {
            let end = section.end().filter(|&end| end <= file_len);
            let Some(end) = end.filter(|_| section.offset >= previous_end) else {
                return Err(ErrorKind::OutOfBounds {
                    what: what.to_string(),
                    offset: section.offset,
                    length: section.len,
                    limit: file_len,
                }
                .into());
            };
            previous_end = end;
        }
        if self.data.offset % super::TENSOR_ALIGNMENT != 0 {
            return Err(ErrorKind::Misaligned {
                tensor: "tensor data section".to_string(),
                offset: self.data.offset,
                alignment: super::TENSOR_ALIGNMENT,
            }
            .into());
        }
        Ok(())
    }

    /// Encodes the header. The checksum field is written as stored in `self`.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.version.to_le_bytes());
        out[8..12].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        let sections = [self.metadata, self.tokenizer, self.tensor_table, self.data];
        for (i, section) in sections.iter().enumerate() {
            let at = 16 + 16 * i;
            out[at..at + 8].copy_from_slice(&section.offset.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&section.len.to_le_bytes());
        }
        out[80..84].copy_from_slice(&self.tensor_count.to_le_bytes());
        out[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&self.metadata_checksum.to_le_bytes());
        out
    }
}

/// Computes the metadata checksum of a file whose header and sections are already in place.
///
/// The caller has checked that the sections lie inside `file`.
pub fn metadata_checksum(file: &[u8], header: &Header) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&file[..CHECKSUM_OFFSET]);
    for section in [header.metadata, header.tokenizer, header.tensor_table] {
        hasher.update(&file[section.offset as usize..(section.offset + section.len) as usize]);
    }
    hasher.finalize()
}
