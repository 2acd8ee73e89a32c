//! The parsed GGUF file and its accessors.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::dequant;
use super::error::GgufError;
use super::ggml_type::GgmlType;
use super::parse::{parse, tensor_n_bytes};
use super::value::{MetaArray, MetaValue};

/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Deepest nesting of arrays inside arrays that the reader accepts, which bounds its recursion.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Largest tensor rank ggml supports (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

/// One entry of the tensor table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, such as `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGUF order: `dims[0]` is the fastest-varying one (the row length).
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the tensor data, relative to the start of the data section.
    pub offset: u64,
    /// Size of the tensor data in bytes, computed from the dimensions and the type's block layout.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Returns the element count: the product of the dimensions, 1 for a rank-0 tensor, and
    /// `u64::MAX` when the product overflows (only possible for a hand-built `TensorInfo`).
    pub fn n_elements(&self) -> u64 {
        self.dims
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim))
            .unwrap_or(u64::MAX)
    }
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

/// A parsed and validated GGUF file.
///
/// Opening checks every count, length and offset against the file size, so the accessors
/// return data without further checks.
pub struct GgufFile {
    backing: Backing,
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_entries", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("data_offset", &self.data_offset)
            .field("file_len", &self.backing.bytes().len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and parses the file at `path`.
    ///
    /// The file must not be modified or truncated while the returned value is alive, because
    /// the tensor data is read from the map.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io_error = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let backing = if len == 0 {
            // Mapping an empty file fails on some platforms; an empty buffer gives the
            // same "invalid magic" error as any other too-short file.
            Backing::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and the bytes are only read through `&[u8]`
            // slices. Memory-mapped bytes can still change if another process writes to or
            // truncates the file, which would break the bounds checked here (a truncation
            // raises SIGBUS on access). GGUF files are written once and then only read, and
            // `open` documents that callers must not modify the file while it is mapped.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
            Backing::Mmap(map)
        };
        GgufFile::from_backing(backing)
    }

    /// Parses a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(backing: Backing) -> Result<GgufFile, GgufError> {
        let parsed = parse(backing.bytes())?;
        Ok(GgufFile {
            backing,
            version: parsed.version,
            alignment: parsed.alignment,
            metadata: parsed.metadata,
            key_index: parsed.key_index,
            tensors: parsed.tensors,
            tensor_index: parsed.tensor_index,
            data_offset: parsed.data_offset,
        })
    }

    /// Returns the format version from the header (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Returns the data alignment: `general.alignment`, or 32 when the key is absent.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Returns the byte offset where the tensor data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Returns the whole file.
    pub fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Returns all metadata entries in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// Returns the value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        let index = *self.key_index.get(key)?;
        self.metadata.get(index).map(|(_, value)| value)
    }

    fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn integer<T: TryFrom<i128>>(&self, key: &str, target: &'static str) -> Result<T, GgufError> {
        let value = self.require(key)?;
        let Some(wide) = value.as_integer() else {
            return Err(wrong_type(key, "an integer", value));
        };
        T::try_from(wide).map_err(|_| GgufError::ValueOutOfRange {
            key: key.to_string(),
            value: wide.to_string(),
            target,
        })
    }

    /// Reads an integer of any GGUF integer type whose value fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        self.integer(key, "u32")
    }

    /// Reads an integer of any GGUF integer type whose value fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.integer(key, "u64")
    }

    /// Reads an integer of any GGUF integer type whose value fits in i64.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        self.integer(key, "i64")
    }

    /// Reads an f32 value.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            MetaValue::F32(v) => Ok(*v),
            other => Err(wrong_type(key, "f32", other)),
        }
    }

    /// Reads an f32 or f64 value as f64.
    pub fn get_f64(&self, key: &str) -> Result<f64, GgufError> {
        match self.require(key)? {
            MetaValue::F32(v) => Ok(f64::from(*v)),
            MetaValue::F64(v) => Ok(*v),
            other => Err(wrong_type(key, "f32 or f64", other)),
        }
    }

    /// Reads a boolean value.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            MetaValue::Bool(v) => Ok(*v),
            other => Err(wrong_type(key, "bool", other)),
        }
    }

    /// Reads a string value.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            MetaValue::String(v) => Ok(v),
            other => Err(wrong_type(key, "string", other)),
        }
    }

    /// Reads an array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&MetaArray, GgufError> {
        match self.require(key)? {
            MetaValue::Array(v) => Ok(v),
            other => Err(wrong_type(key, "array", other)),
        }
    }

    /// Reads an array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.require(key)? {
            MetaValue::Array(MetaArray::String(v)) => Ok(v),
            other => Err(wrong_type(key, "array<string>", other)),
        }
    }

    /// Reads an array of f32.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32], GgufError> {
        match self.require(key)? {
            MetaValue::Array(MetaArray::F32(v)) => Ok(v),
            other => Err(wrong_type(key, "array<f32>", other)),
        }
    }

    /// Reads an array of any integer element type as i64, failing on a u64 element above `i64::MAX`.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>, GgufError> {
        let value = self.require(key)?;
        let Some(wide) = value.as_array().and_then(MetaArray::to_integers) else {
            return Err(wrong_type(key, "an array of integers", value));
        };
        wide.into_iter()
            .map(|v| {
                i64::try_from(v).map_err(|_| GgufError::ValueOutOfRange {
                    key: key.to_string(),
                    value: v.to_string(),
                    target: "i64",
                })
            })
            .collect()
    }

    /// Returns the tensor table in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Returns the tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let index = *self.tensor_index.get(name)?;
        self.tensors.get(index)
    }

    /// Returns the raw bytes of a tensor from this file's tensor table.
    ///
    /// The bounds of every table entry were checked at open. A `TensorInfo` that does not
    /// fit this file (built by hand or taken from another file) yields an empty slice.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        self.data_range(t)
            .and_then(|range| self.bytes().get(range))
            .unwrap_or(&[])
    }

    fn data_range(&self, t: &TensorInfo) -> Option<std::ops::Range<usize>> {
        let start = self.data_offset.checked_add(t.offset)?;
        let end = start.checked_add(t.n_bytes)?;
        Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }

    /// Converts a tensor to f32 values in GGUF element order (row-major, `dims[0]` fastest).
    ///
    /// Supports F32, F16, BF16, Q8_0, Q4_0 and Q4_1 with results equal bit for bit to ggml's
    /// reference dequantization. Other types return [`GgufError::UnsupportedDequant`].
    pub fn tensor_to_f32(&self, t: &TensorInfo) -> Result<Vec<f32>, GgufError> {
        let foreign = || GgufError::ForeignTensor {
            tensor: t.name.clone(),
        };
        let expected_bytes =
            tensor_n_bytes(&t.name, &t.dims, t.ggml_type).map_err(|_| foreign())?;
        if expected_bytes != t.n_bytes {
            return Err(foreign());
        }
        let data = self
            .data_range(t)
            .and_then(|range| self.bytes().get(range))
            .ok_or_else(foreign)?;
        dequant::dequantize(&t.name, t.ggml_type, data)
    }
}

pub(crate) fn wrong_type(key: &str, expected: &'static str, found: &MetaValue) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected,
        found: found.type_description(),
    }
}
