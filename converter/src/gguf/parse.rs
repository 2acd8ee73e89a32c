//! GGUF file parsing and validation.
//!
//! GGUF versions 2 and 3 are little-endian. A file starts with the magic `GGUF`, a u32 version,
//! a u64 tensor count and a u64 metadata entry count. The metadata entries follow, each a string
//! key, a u32 value type and the value. Then comes the tensor table, each entry a string name, a
//! u32 dimension count, u64 dimensions with the fastest-varying first, a u32 ggml type and a u64
//! data offset. Padding up to `general.alignment` (default 32) precedes the tensor data section.

use std::collections::HashMap;

use super::cursor::{decode_le, Cursor};
use super::error::GgufError;
use super::ggml_type::GgmlType;
use super::reader::{wrong_type, TensorInfo, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH, MAX_DIMS};
use super::value::{MetaArray, MetaValue, ValueType};

const MAGIC: [u8; 4] = *b"GGUF";
/// Smallest metadata entry: 8-byte key length, 4-byte value type, 1-byte value.
const MIN_METADATA_ENTRY_LEN: u64 = 13;
/// Smallest tensor table entry: 8-byte name length, 4-byte rank, 4-byte type, 8-byte offset.
const MIN_TENSOR_ENTRY_LEN: u64 = 24;
/// Maximum number of entries reserved up front from a count in the file. A count is checked
/// only against the bytes left, an entry takes several times more memory than its smallest
/// encoding, and each level of nested arrays reserves again. So a larger collection grows as
/// its entries are read.
const MAX_RESERVED_ENTRIES: usize = 1024;

/// Returns the capacity to reserve for `count` entries read from the file.
fn reserved_capacity(count: u64) -> usize {
    usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min(MAX_RESERVED_ENTRIES)
}

/// Everything `parse` extracts from a file, before it is paired with its bytes.
pub(crate) struct Parsed {
    pub(crate) version: u32,
    pub(crate) alignment: u64,
    pub(crate) metadata: Vec<(String, MetaValue)>,
    pub(crate) key_index: HashMap<String, usize>,
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) tensor_index: HashMap<String, usize>,
    pub(crate) data_offset: u64,
}

/// Computes the byte size of a tensor and checks its shape: element count within `i64`,
/// a known type, and a row length that is a whole number of blocks.
pub(crate) fn tensor_n_bytes(
    name: &str,
    dims: &[u64],
    ggml_type: GgmlType,
) -> Result<u64, GgufError> {
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
        n_elements = n_elements
            .checked_mul(dim)
            .filter(|&n| n <= limit)
            .ok_or_else(overflow)?;
    }

    let (block_size, block_bytes) =
        ggml_type
            .block_layout()
            .ok_or(GgufError::UnknownTensorType {
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
    (n_elements / block_size)
        .checked_mul(block_bytes)
        .ok_or_else(overflow)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let mut cur = Cursor::new(bytes);

    let magic_len = bytes.len().min(4);
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(GgufError::InvalidMagic {
            found: bytes.get(..magic_len).unwrap_or(&[]).to_vec(),
        });
    }
    cur.take(4, &|| "magic".to_string())?;

    let raw_version: [u8; 4] = cur.array(&|| "version".to_string())?;
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

    check_count(
        &cur,
        "tensor count",
        tensor_count_offset,
        tensor_count,
        MIN_TENSOR_ENTRY_LEN,
    )?;
    check_count(
        &cur,
        "metadata entry count",
        kv_count_offset,
        kv_count,
        MIN_METADATA_ENTRY_LEN,
    )?;

    let (metadata, key_index) = read_metadata(&mut cur, kv_count)?;
    let alignment = read_alignment(&metadata, &key_index)?;
    let (tensors, tensor_index) = read_tensor_table(&mut cur, tensor_count, alignment)?;

    let end_of_table = cur.offset();
    let padding = (alignment - end_of_table % alignment) % alignment;
    let data_offset = end_of_table.saturating_add(padding);
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
    field: &str,
    offset: u64,
    count: u64,
    min_entry_len: u64,
) -> Result<(), GgufError> {
    let available = cur.remaining();
    let max = available / min_entry_len;
    if count > max {
        return Err(GgufError::CountTooLarge {
            field: field.to_string(),
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
    let capacity = reserved_capacity(kv_count);
    let mut metadata = Vec::with_capacity(capacity);
    let mut key_index = HashMap::with_capacity(capacity);

    for entry in 0..kv_count {
        let key_offset = cur.offset();
        let key = cur.string(&|| format!("key of metadata entry {entry}"))?;
        let type_offset = cur.offset();
        let type_id = cur.u32(&|| format!("value type of metadata key `{key}`"))?;
        let value_type =
            ValueType::from_id(type_id).ok_or_else(|| GgufError::InvalidValueType {
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

fn read_value(
    cur: &mut Cursor<'_>,
    value_type: ValueType,
    key: &str,
) -> Result<MetaValue, GgufError> {
    let field = || format!("value of metadata key `{key}`");
    Ok(match value_type {
        ValueType::U8 => MetaValue::U8(cur.u8(&field)?),
        ValueType::I8 => MetaValue::I8(i8::from_le_bytes([cur.u8(&field)?])),
        ValueType::U16 => MetaValue::U16(u16::from_le_bytes(cur.array(&field)?)),
        ValueType::I16 => MetaValue::I16(i16::from_le_bytes(cur.array(&field)?)),
        ValueType::U32 => MetaValue::U32(cur.u32(&field)?),
        ValueType::I32 => MetaValue::I32(i32::from_le_bytes(cur.array(&field)?)),
        ValueType::F32 => MetaValue::F32(f32::from_le_bytes(cur.array(&field)?)),
        ValueType::Bool => {
            let offset = cur.offset();
            MetaValue::Bool(parse_bool(cur.u8(&field)?, key, offset)?)
        }
        ValueType::String => MetaValue::String(cur.string(&field)?),
        ValueType::Array => MetaValue::Array(read_array(cur, key, 1)?),
        ValueType::U64 => MetaValue::U64(cur.u64(&field)?),
        ValueType::I64 => MetaValue::I64(i64::from_le_bytes(cur.array(&field)?)),
        ValueType::F64 => MetaValue::F64(f64::from_le_bytes(cur.array(&field)?)),
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
    let fixed_len = count * min_len;
    let field = || format!("elements of array `{key}`");

    Ok(match element_type {
        ValueType::U8 => MetaArray::U8(cur.take(fixed_len, &field)?.to_vec()),
        ValueType::I8 => MetaArray::I8(decode_le(cur.take(fixed_len, &field)?, i8::from_le_bytes)),
        ValueType::U16 => {
            MetaArray::U16(decode_le(cur.take(fixed_len, &field)?, u16::from_le_bytes))
        }
        ValueType::I16 => {
            MetaArray::I16(decode_le(cur.take(fixed_len, &field)?, i16::from_le_bytes))
        }
        ValueType::U32 => {
            MetaArray::U32(decode_le(cur.take(fixed_len, &field)?, u32::from_le_bytes))
        }
        ValueType::I32 => {
            MetaArray::I32(decode_le(cur.take(fixed_len, &field)?, i32::from_le_bytes))
        }
        ValueType::F32 => {
            MetaArray::F32(decode_le(cur.take(fixed_len, &field)?, f32::from_le_bytes))
        }
        ValueType::U64 => {
            MetaArray::U64(decode_le(cur.take(fixed_len, &field)?, u64::from_le_bytes))
        }
        ValueType::I64 => {
            MetaArray::I64(decode_le(cur.take(fixed_len, &field)?, i64::from_le_bytes))
        }
        ValueType::F64 => {
            MetaArray::F64(decode_le(cur.take(fixed_len, &field)?, f64::from_le_bytes))
        }
        ValueType::Bool => {
            let start = cur.offset();
            let raw = cur.take(fixed_len, &field)?;
            let mut values = Vec::with_capacity(raw.len());
            for (i, &byte) in raw.iter().enumerate() {
                values.push(parse_bool(byte, key, start + i as u64)?);
            }
            MetaArray::Bool(values)
        }
        ValueType::String => {
            let mut values = Vec::with_capacity(reserved_capacity(count));
            for i in 0..count {
                values.push(cur.string(&|| format!("element {i} of array `{key}`"))?);
            }
            MetaArray::String(values)
        }
        ValueType::Array => {
            let mut values = Vec::with_capacity(reserved_capacity(count));
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
    let capacity = reserved_capacity(tensor_count);
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
