//! GGUF file parsing and validation.
//!
//! Layout of GGUF versions 2 and 3 (little-endian): the magic `GGUF`, a u32 version, a u64
//! tensor count, a u64 metadata entry count, the metadata entries (string key, u32 value type,
//! value), the tensor table (string name, u32 dimension count, u64 dimensions with the
//! fastest-varying first, u32 ggml type, u64 data offset), padding up to `general.alignment`
//! (default 32), and then the tensor data section.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::cursor::{decode_le, Cursor};
use super::dequant;
use super::error::GgufError;
use super::ggml_type::GgmlType;
use super::value::{MetaArray, MetaValue, ValueType};

/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Deepest nesting of arrays inside arrays that the reader accepts. Real files use at most 1.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Largest tensor rank ggml supports (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

const MAGIC: [u8; 4] = *b"GGUF";
const HEADER_LEN: u64 = 24;
/// Smallest metadata entry: 8-byte key length, 4-byte value type, 1-byte value.
const MIN_METADATA_ENTRY_LEN: u64 = 13;
/// Smallest tensor table entry: 8-byte name length, 4-byte rank, 4-byte type, 8-byte offset.
const MIN_TENSOR_ENTRY_LEN: u64 = 24;

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
    /// Returns the element count (the product of the dimensions; 1 for a rank-0 tensor).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
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
/// return data without further checks and never panic.
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

struct Parsed {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_offset: u64,
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
        let expected_bytes = tensor_n_bytes(&t.name, &t.dims, t.ggml_type).map_err(|_| foreign())?;
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

fn wrong_type(key: &str, expected: &'static str, found: &MetaValue) -> GgufError {
    GgufError::WrongType {
        key: key.to_string(),
        expected,
        found: found.type_description(),
    }
}

/// Computes the byte size of a tensor and checks its shape: element count within `i64`,
/// a known type, and a row length that is a whole number of blocks.
pub(crate) fn tensor_n_bytes(name: &str, dims: &[u64], ggml_type: GgmlType) -> Result<u64, GgufError> {
    let overflow = || GgufError::ShapeOverflow {
        tensor: name.to_string(),
        dims: dims.to_vec(),
    };
    let limit = i64::MAX as u64;
    let mut n_elements: u64 = 1;
    for &dim in dims {
        if dim > limit {
            return Err(overflow());
        }
        n_elements = n_elements.checked_mul(dim).filter(|&n| n <= limit).ok_or_else(overflow)?;
    }

    let (block_size, block_bytes) = ggml_type.block_layout().ok_or(GgufError::UnknownTensorType {
        tensor: name.to_string(),
        type_id: ggml_type.id(),
    })?;
    let row_len = dims.first().copied().unwrap_or(1);
    if row_len % block_size != 0 {
        return Err(GgufError::PartialBlock {
            tensor: name.to_string(),
            ggml_type: ggml_type.name(),
            row_len,
            block_size,
        });
    }
    (n_elements / block_size).checked_mul(block_bytes).ok_or_else(overflow)
}

fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let mut cur = Cursor::new(bytes);

    let magic_len = bytes.len().min(4);
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(GgufError::InvalidMagic {
            found: bytes.get(..magic_len).unwrap_or(&[]).to_vec(),
        });
    }
    cur.take(4, &|| "magic".to_string())?;

    let version_bytes = cur.take(4, &|| "version".to_string())?;
    let raw_version = <[u8; 4]>::try_from(version_bytes).unwrap_or([0; 4]);
    let version = u32::from_le_bytes(raw_version);
    match version {
        2 | 3 => {}
        _ if matches!(u32::from_be_bytes(raw_version), 2 | 3) => {
            return Err(GgufError::BigEndian { bytes: raw_version });
        }
        _ => return Err(GgufError::UnsupportedVersion { version }),
    }

    let tensor_count_offset = cur.offset();
    let tensor_count = cur.u64(&|| "tensor count".to_string())?;
    let kv_count_offset = cur.offset();
    let kv_count = cur.u64(&|| "metadata entry count".to_string())?;
    debug_assert_eq!(cur.offset(), HEADER_LEN);

    check_count(&cur, "tensor count", tensor_count_offset, tensor_count, MIN_TENSOR_ENTRY_LEN)?;
    check_count(&cur, "metadata entry count", kv_count_offset, kv_count, MIN_METADATA_ENTRY_LEN)?;

    let (metadata, key_index) = read_metadata(&mut cur, kv_count)?;
    let alignment = read_alignment(&metadata, &key_index)?;
    let (tensors, tensor_index) = read_tensor_table(&mut cur, tensor_count, alignment)?;

    let end_of_table = cur.offset();
    let padding = (alignment - end_of_table % alignment) % alignment;
    let data_offset = end_of_table.checked_add(padding).unwrap_or(u64::MAX);
    let data_len = (bytes.len() as u64).saturating_sub(data_offset);
    check_tensor_bounds(&tensors, data_len)?;

    Ok(Parsed {
        version,
        alignment,
        metadata,
        key_index,
        tensors,
        tensor_index,
        data_offset,
    })
}

/// Rejects a count whose entries could not fit in the rest of the file, before anything is
/// allocated for them.
fn check_count(
    cur: &Cursor<'_>,
    what: &str,
    offset: u64,
    count: u64,
    min_entry_len: u64,
) -> Result<(), GgufError> {
    let available = cur.remaining();
    let max = available / min_entry_len;
    if count > max {
        return Err(GgufError::CountTooLarge {
            what: what.to_string(),
            offset,
            count,
            max,
            available,
        });
    }
    Ok(())
}

type Metadata = (Vec<(String, MetaValue)>, HashMap<String, usize>);

fn read_metadata(cur: &mut Cursor<'_>, kv_count: u64) -> Result<Metadata, GgufError> {
    // `check_count` bounded kv_count by the file length, so these reservations are bounded too.
    let capacity = usize::try_from(kv_count).unwrap_or(0);
    let mut metadata = Vec::with_capacity(capacity);
    let mut key_index = HashMap::with_capacity(capacity);

    for entry in 0..kv_count {
        let key_offset = cur.offset();
        let key = cur.string(&|| format!("key of metadata entry {entry}"))?;
        let type_offset = cur.offset();
        let type_id = cur.u32(&|| format!("value type of metadata key `{key}`"))?;
        let value_type = ValueType::from_id(type_id).ok_or_else(|| GgufError::InvalidValueType {
            key: key.clone(),
            type_id,
            offset: type_offset,
        })?;
        let value = read_value(cur, value_type, &key)?;

        if key_index.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        key_index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }
    Ok((metadata, key_index))
}

fn read_value(cur: &mut Cursor<'_>, value_type: ValueType, key: &str) -> Result<MetaValue, GgufError> {
    let what = || format!("value of metadata key `{key}`");
    Ok(match value_type {
        ValueType::U8 => MetaValue::U8(cur.u8(&what)?),
        ValueType::I8 => MetaValue::I8(i8::from_le_bytes([cur.u8(&what)?])),
        ValueType::U16 => MetaValue::U16(u16::from_le_bytes(cur.array(&what)?)),
        ValueType::I16 => MetaValue::I16(i16::from_le_bytes(cur.array(&what)?)),
        ValueType::U32 => MetaValue::U32(cur.u32(&what)?),
        ValueType::I32 => MetaValue::I32(i32::from_le_bytes(cur.array(&what)?)),
        ValueType::F32 => MetaValue::F32(f32::from_le_bytes(cur.array(&what)?)),
        ValueType::Bool => {
            let offset = cur.offset();
            MetaValue::Bool(parse_bool(cur.u8(&what)?, key, offset)?)
        }
        ValueType::String => MetaValue::String(cur.string(&what)?),
        ValueType::Array => MetaValue::Array(read_array(cur, key, 1)?),
        ValueType::U64 => MetaValue::U64(cur.u64(&what)?),
        ValueType::I64 => MetaValue::I64(i64::from_le_bytes(cur.array(&what)?)),
        ValueType::F64 => MetaValue::F64(f64::from_le_bytes(cur.array(&what)?)),
    })
}

fn parse_bool(byte: u8, key: &str, offset: u64) -> Result<bool, GgufError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::InvalidBool {
            key: key.to_string(),
            value,
            offset,
        }),
    }
}

/// Reads an array header and its elements. `depth` is 1 for an array that is a metadata value.
fn read_array(cur: &mut Cursor<'_>, key: &str, depth: usize) -> Result<MetaArray, GgufError> {
    let array_offset = cur.offset();
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            key: key.to_string(),
            max_depth: MAX_ARRAY_DEPTH,
            offset: array_offset,
        });
    }

    let type_id = cur.u32(&|| format!("element type of array `{key}`"))?;
    let element_type = ValueType::from_id(type_id).ok_or_else(|| GgufError::InvalidValueType {
        key: key.to_string(),
        type_id,
        offset: array_offset,
    })?;
    let count_offset = cur.offset();
    let count = cur.u64(&|| format!("element count of array `{key}`"))?;
    let min_len = element_type.min_encoded_size();
    check_count(
        cur,
        &format!("element count of array `{key}`"),
        count_offset,
        count,
        min_len,
    )?;
    // After `check_count`, count * min_len <= remaining bytes, so neither overflows.
    let n = usize::try_from(count).unwrap_or(0);
    let fixed_len = count * min_len;
    let what = || format!("elements of array `{key}`");

    Ok(match element_type {
        ValueType::U8 => MetaArray::U8(cur.take(fixed_len, &what)?.to_vec()),
        ValueType::I8 => MetaArray::I8(decode_le(cur.take(fixed_len, &what)?, i8::from_le_bytes)),
        ValueType::U16 => MetaArray::U16(decode_le(cur.take(fixed_len, &what)?, u16::from_le_bytes)),
        ValueType::I16 => MetaArray::I16(decode_le(cur.take(fixed_len, &what)?, i16::from_le_bytes)),
        ValueType::U32 => MetaArray::U32(decode_le(cur.take(fixed_len, &what)?, u32::from_le_bytes)),
        ValueType::I32 => MetaArray::I32(decode_le(cur.take(fixed_len, &what)?, i32::from_le_bytes)),
        ValueType::F32 => MetaArray::F32(decode_le(cur.take(fixed_len, &what)?, f32::from_le_bytes)),
        ValueType::U64 => MetaArray::U64(decode_le(cur.take(fixed_len, &what)?, u64::from_le_bytes)),
        ValueType::I64 => MetaArray::I64(decode_le(cur.take(fixed_len, &what)?, i64::from_le_bytes)),
        ValueType::F64 => MetaArray::F64(decode_le(cur.take(fixed_len, &what)?, f64::from_le_bytes)),
        ValueType::Bool => {
            let start = cur.offset();
            let raw = cur.take(fixed_len, &what)?;
            let mut values = Vec::with_capacity(n);
            for (i, &byte) in raw.iter().enumerate() {
                values.push(parse_bool(byte, key, start + i as u64)?);
            }
            MetaArray::Bool(values)
        }
        ValueType::String => {
            let mut values = Vec::with_capacity(n);
            for i in 0..count {
                values.push(cur.string(&|| format!("element {i} of array `{key}`"))?);
            }
            MetaArray::String(values)
        }
        ValueType::Array => {
            let mut values = Vec::with_capacity(n);
            for _ in 0..count {
                values.push(read_array(cur, key, depth + 1)?);
            }
            MetaArray::Array(values)
        }
    })
}

fn read_alignment(
    metadata: &[(String, MetaValue)],
    key_index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    const KEY: &str = "general.alignment";
    let Some((_, value)) = key_index.get(KEY).and_then(|&i| metadata.get(i)) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let Some(wide) = value.as_integer() else {
        return Err(wrong_type(KEY, "an unsigned integer", value));
    };
    match u64::try_from(wide) {
        Ok(alignment) if alignment.is_power_of_two() => Ok(alignment),
        Ok(alignment) => Err(GgufError::InvalidAlignment { value: alignment }),
        Err(_) => Err(GgufError::ValueOutOfRange {
            key: KEY.to_string(),
            value: wide.to_string(),
            target: "u64",
        }),
    }
}

type TensorTable = (Vec<TensorInfo>, HashMap<String, usize>);

fn read_tensor_table(
    cur: &mut Cursor<'_>,
    tensor_count: u64,
    alignment: u64,
) -> Result<TensorTable, GgufError> {
    // `check_count` bounded tensor_count by the file length.
    let capacity = usize::try_from(tensor_count).unwrap_or(0);
    let mut tensors = Vec::with_capacity(capacity);
    let mut tensor_index = HashMap::with_capacity(capacity);

    for i in 0..tensor_count {
        let name = cur.string(&|| format!("name of tensor {i}"))?;
        let n_dims = cur.u32(&|| format!("dimension count of tensor `{name}`"))?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                tensor: name,
                n_dims,
                max: MAX_DIMS,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(cur.u64(&|| format!("dimension {d} of tensor `{name}`"))?);
        }
        let type_id = cur.u32(&|| format!("type of tensor `{name}`"))?;
        let offset = cur.u64(&|| format!("data offset of tensor `{name}`"))?;

        let ggml_type = GgmlType::from_id(type_id);
        let n_bytes = tensor_n_bytes(&name, &dims, ggml_type)?;
        if offset % alignment != 0 {
            return Err(GgufError::MisalignedOffset {
                tensor: name,
                offset,
                alignment,
            });
        }
        if tensor_index.contains_key(&name) {
            return Err(GgufError::DuplicateTensor { name });
        }

        tensor_index.insert(name.clone(), tensors.len());
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            n_bytes,
        });
    }
    Ok((tensors, tensor_index))
}

/// Checks that every tensor lies inside the data section and that no two tensors share bytes.
fn check_tensor_bounds(tensors: &[TensorInfo], data_len: u64) -> Result<(), GgufError> {
    for t in tensors {
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                end: end.unwrap_or(u64::MAX),
                data_len,
            });
        }
    }

    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.n_bytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for pair in by_offset.windows(2) {
        let [first, second] = pair else { continue };
        // Bounds were checked above, so this addition does not overflow.
        if second.offset < first.offset + first.n_bytes {
            return Err(GgufError::OverlappingTensors {
                first: first.name.clone(),
                second: second.name.clone(),
                offset: second.offset,
            });
        }
    }
    Ok(())
}
