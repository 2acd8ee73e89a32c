//! A minimal GGUF writer for tests, written apart from the reader so that round trips check
//! the reader against an independent encoding.

#![allow(dead_code)]

use tinyllm_convert::gguf::{MetaArray, MetaValue};

/// Appends a little-endian u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian u64.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a GGUF string: u64 byte length, then the bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn type_id(value: &MetaValue) -> u32 {
    match value {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn array_type_id(array: &MetaArray) -> u32 {
    match array {
        MetaArray::U8(_) => 0,
        MetaArray::I8(_) => 1,
        MetaArray::U16(_) => 2,
        MetaArray::I16(_) => 3,
        MetaArray::U32(_) => 4,
        MetaArray::I32(_) => 5,
        MetaArray::F32(_) => 6,
        MetaArray::Bool(_) => 7,
        MetaArray::String(_) => 8,
        MetaArray::Array(_) => 9,
        MetaArray::U64(_) => 10,
        MetaArray::I64(_) => 11,
        MetaArray::F64(_) => 12,
    }
}

/// Appends a value without its type id.
pub fn put_value(out: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => out.push(*v),
        MetaValue::I8(v) => out.push(*v as u8),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(v) => put_str(out, v),
        MetaValue::Array(a) => put_array(out, a),
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// Appends an array: element type id, element count, elements.
pub fn put_array(out: &mut Vec<u8>, array: &MetaArray) {
    put_u32(out, array_type_id(array));
    put_u64(out, array.len() as u64);
    match array {
        MetaArray::U8(v) => out.extend_from_slice(v),
        MetaArray::I8(v) => v.iter().for_each(|x| out.push(*x as u8)),
        MetaArray::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::Bool(v) => v.iter().for_each(|x| out.push(u8::from(*x))),
        MetaArray::String(v) => v.iter().for_each(|x| put_str(out, x)),
        MetaArray::Array(v) => v.iter().for_each(|x| put_array(out, x)),
        MetaArray::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        MetaArray::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}

/// A tensor to write: its table entry fields and its raw data.
#[derive(Clone)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
}

/// Builds a GGUF file in memory.
///
/// Tensor data follows the table in order, each tensor starting at a multiple of the
/// alignment. No padding follows the last tensor, so every proper prefix of the file is
/// missing bytes that the reader needs.
#[derive(Clone)]
pub struct GgufBuilder {
    pub version: u32,
    /// Written as `general.alignment` (u32) before the other entries when set.
    pub alignment: Option<u32>,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorSpec>,
    /// `(tensor index, offset)` pairs written in place of the computed data offsets.
    pub offset_overrides: Vec<(usize, u64)>,
}

impl GgufBuilder {
    pub fn new() -> GgufBuilder {
        GgufBuilder {
            version: 3,
            alignment: None,
            metadata: Vec::new(),
            tensors: Vec::new(),
            offset_overrides: Vec::new(),
        }
    }

    pub fn meta(mut self, key: &str, value: MetaValue) -> GgufBuilder {
        self.metadata.push((key.to_string(), value));
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> GgufBuilder {
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            dims: dims.to_vec(),
            type_id,
            data,
        });
        self
    }

    /// Alignment used for padding: the declared one when it is a power of two, else 32.
    pub fn padding_alignment(&self) -> u64 {
        match self.alignment {
            Some(a) if a.is_power_of_two() => u64::from(a),
            _ => 32,
        }
    }

    /// Metadata entries as the reader should return them, `general.alignment` first.
    pub fn expected_metadata(&self) -> Vec<(String, MetaValue)> {
        let mut all = Vec::new();
        if let Some(a) = self.alignment {
            all.push(("general.alignment".to_string(), MetaValue::U32(a)));
        }
        all.extend(self.metadata.iter().cloned());
        all
    }

    /// Data offsets (relative to the data section) that `build` gives each tensor.
    pub fn offsets(&self) -> Vec<u64> {
        let align = self.padding_alignment();
        let mut offsets = Vec::new();
        let mut next = 0u64;
        for t in &self.tensors {
            offsets.push(next);
            next = (next + t.data.len() as u64).div_ceil(align) * align;
        }
        offsets
    }

    pub fn build(&self) -> Vec<u8> {
        let align = self.padding_alignment();
        let metadata = self.expected_metadata();
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        put_u32(&mut out, self.version);
        put_u64(&mut out, self.tensors.len() as u64);
        put_u64(&mut out, metadata.len() as u64);
        for (key, value) in &metadata {
            put_str(&mut out, key);
            put_u32(&mut out, type_id(value));
            put_value(&mut out, value);
        }
        for (i, (t, computed)) in self.tensors.iter().zip(self.offsets()).enumerate() {
            let overridden = self.offset_overrides.iter().find(|(index, _)| *index == i);
            let offset = overridden.map_or(computed, |&(_, offset)| offset);
            put_str(&mut out, &t.name);
            put_u32(&mut out, t.dims.len() as u32);
            t.dims.iter().for_each(|&d| put_u64(&mut out, d));
            put_u32(&mut out, t.type_id);
            put_u64(&mut out, offset);
        }
        pad_to(&mut out, align);
        let data_start = out.len() as u64;
        for (t, offset) in self.tensors.iter().zip(self.offsets()) {
            out.resize((data_start + offset) as usize, 0);
            out.extend_from_slice(&t.data);
        }
        out
    }
}

pub fn pad_to(out: &mut Vec<u8>, align: u64) {
    let len = out.len() as u64;
    out.resize(len.div_ceil(align).saturating_mul(align) as usize, 0);
}

/// Returns the shared data folder from `TINYLLM_SHARED` (default `../shared` from the
/// workspace root), or `None` with a printed reason when it is absent.
pub fn shared_dir() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("TINYLLM_SHARED") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: shared data folder {} not found; set TINYLLM_SHARED",
            dir.display()
        );
        None
    }
}

/// Returns `shared_dir()/relative` when it exists, or `None` with a printed reason.
pub fn shared_file(relative: &str) -> Option<std::path::PathBuf> {
    let path = shared_dir()?.join(relative);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} not found", path.display());
        None
    }
}
