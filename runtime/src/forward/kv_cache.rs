//! The key/value cache of one session.

use alloc::vec::Vec;

use half::f16;

use crate::error::{ErrorKind, Result};
use crate::format::Metadata;
use crate::quant::{quantize_row_q8_0, BlockQ8_0, QK};

/// The element type of a KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    /// binary32: exact, 4 bytes a value.
    #[default]
    F32,
    /// binary16: 2 bytes a value. Keys and values after RoPE and projection stay far inside
    /// f16's range; the rounding (relative 2^-11) is what changes the logits.
    F16,
    /// Q8_0 blocks: each 32 values of a head share an f16 scale, `d = max|x| / 127`, and keep
    /// an int8 each; 34 bytes per 32 values (1.06 bytes a value). Needs a `head_dim` that is a
    /// multiple of 32, so that no block straddles two heads.
    Q8_0,
}

impl KvType {
    /// Bytes of one stored value.
    pub fn bytes(self) -> f64 {
        match self {
            KvType::F32 => 4.0,
            KvType::F16 => 2.0,
            KvType::Q8_0 => core::mem::size_of::<BlockQ8_0>() as f64 / QK as f64,
        }
    }

    /// Parses `f32`, `f16` or `q8_0`.
    pub fn from_name(name: &str) -> Option<KvType> {
        match name {
            "f32" => Some(KvType::F32),
            "f16" => Some(KvType::F16),
            "q8_0" => Some(KvType::Q8_0),
            _ => None,
        }
    }

    /// The name `from_name` reads.
    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }
}

/// Positions by which a layer's keys and values grow at a time.
const GROWTH_POSITIONS: usize = 256;

/// The rows of every layer's keys and values in one element type.
#[derive(Debug, Clone)]
struct Store<T> {
    keys: Vec<Vec<T>>,
    values: Vec<Vec<T>>,
}

impl<T: Copy> Store<T> {
    fn new(layers: usize) -> Store<T> {
        Store { keys: (0..layers).map(|_| Vec::new()).collect(), values: (0..layers).map(|_| Vec::new()).collect() }
    }

    fn clear(&mut self) {
        self.keys.iter_mut().chain(self.values.iter_mut()).for_each(Vec::clear);
    }

    /// Keeps `len` positions; `row_elements[l]` is the elements of one position in layer `l`.
    fn truncate(&mut self, row_elements: &[usize], len: usize) {
        for (layer, &elements) in row_elements.iter().enumerate() {
            self.keys[layer].truncate(len * elements);
            self.values[layer].truncate(len * elements);
        }
    }

    /// Makes room in layer `layer` for `positions` positions of `row_elements` elements. Memory
    /// grows in steps of [`GROWTH_POSITIONS`] positions, capped at `capacity`, so the bytes held
    /// stay within one step of the bytes used, whatever the element type.
    fn reserve(&mut self, layer: usize, positions: usize, row_elements: usize, capacity: usize) {
        let target = positions.div_ceil(GROWTH_POSITIONS).saturating_mul(GROWTH_POSITIONS).min(capacity.max(positions)) * row_elements;
        for rows in [&mut self.keys[layer], &mut self.values[layer]] {
            if rows.capacity() < positions * row_elements {
                rows.reserve_exact(target - rows.len());
            }
        }
    }

    fn append(&mut self, layer: usize, keys: &[f32], values: &[f32], convert: impl Fn(f32) -> T) {
        self.keys[layer].extend(keys.iter().map(|&x| convert(x)));
        self.values[layer].extend(values.iter().map(|&x| convert(x)));
    }

    fn bytes(&self) -> usize {
        self.keys.iter().chain(self.values.iter()).map(|rows| rows.capacity() * core::mem::size_of::<T>()).sum()
    }
}

impl Store<BlockQ8_0> {
    /// Appends positions of `kv_dim` values each, quantized per block of 32.
    fn append_q8_0(&mut self, layer: usize, keys: &[f32], values: &[f32], kv_dim: usize) {
        for row in keys.chunks_exact(kv_dim) {
            quantize_row_q8_0(row, &mut self.keys[layer]);
        }
        for row in values.chunks_exact(kv_dim) {
            quantize_row_q8_0(row, &mut self.values[layer]);
        }
    }
}

#[derive(Debug, Clone)]
enum Storage {
    F32(Store<f32>),
    F16(Store<f16>),
    Q8_0(Store<BlockQ8_0>),
}

/// One layer's keys and values, `positions` × `kv_dim` values each.
#[derive(Debug, Clone, Copy)]
pub enum KvLayer<'a> {
    /// f32 rows.
    F32 {
        /// Keys.
        keys: &'a [f32],
        /// Values.
        values: &'a [f32],
    },
    /// f16 rows.
    F16 {
        /// Keys.
        keys: &'a [f16],
        /// Values.
        values: &'a [f16],
    },
    /// Q8_0 rows, `kv_dim / 32` blocks per position.
    Q8_0 {
        /// Keys.
        keys: &'a [BlockQ8_0],
        /// Values.
        values: &'a [BlockQ8_0],
    },
}

/// Keys and values of every past position, per layer, in f32, f16 or Q8_0.
///
/// Layer `l` stores `len` rows of `n_kv_heads * head_dim` values for keys and the same for
/// values. Memory grows with the positions used, up to `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    storage: Storage,
    kv_dims: Vec<usize>,
    len: usize,
    capacity: usize,
    /// A `head_dim` that the element type cannot store (Q8_0 needs multiples of 32).
    unsupported_head_dim: Option<u32>,
}

impl KvCache {
    /// Creates an empty f32 cache for `capacity` positions of the model described by `metadata`.
    pub fn new(metadata: &Metadata, capacity: usize) -> KvCache {
        KvCache::with_type(metadata, capacity, KvType::F32)
    }

    /// Creates an empty cache of element type `kv_type`. A Q8_0 cache for a model whose
    /// `head_dim` is not a multiple of 32 is created all the same, but every forward pass with
    /// it fails with the error of [`KvCache::check`], which names the problem.
    pub fn with_type(metadata: &Metadata, capacity: usize, kv_type: KvType) -> KvCache {
        let kv_dims: Vec<usize> = metadata.layers.iter().map(|l| (l.n_kv_heads * l.head_dim) as usize).collect();
        let layers = kv_dims.len();
        let storage = match kv_type {
            KvType::F32 => Storage::F32(Store::new(layers)),
            KvType::F16 => Storage::F16(Store::new(layers)),
            KvType::Q8_0 => Storage::Q8_0(Store::new(layers)),
        };
        let unsupported_head_dim = match kv_type {
            KvType::Q8_0 => metadata.layers.iter().map(|l| l.head_dim).find(|d| *d as usize % QK != 0),
            _ => None,
        };
        KvCache { storage, kv_dims, len: 0, capacity, unsupported_head_dim }
    }

    /// Fails when the element type cannot store this model's heads (a Q8_0 cache needs a
    /// `head_dim` that is a multiple of 32).
    pub fn check(&self) -> Result<()> {
        match self.unsupported_head_dim {
            Some(head_dim) => Err(ErrorKind::InvalidValue {
                field: "KV cache type".into(),
                value: alloc::format!("q8_0 for a model with head_dim {head_dim}"),
                expected: "f16 or f32 (q8_0 needs a head_dim that is a multiple of 32)".into(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// The element type.
    pub fn kv_type(&self) -> KvType {
        match self.storage {
            Storage::F32(_) => KvType::F32,
            Storage::F16(_) => KvType::F16,
            Storage::Q8_0(_) => KvType::Q8_0,
        }
    }

    /// Number of positions stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position; memory is kept for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
        match &mut self.storage {
            Storage::F32(store) => store.clear(),
            Storage::F16(store) => store.clear(),
            Storage::Q8_0(store) => store.clear(),
        }
    }

    /// Drops positions from `len` on, keeping the first `len`.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            match &mut self.storage {
                Storage::F32(store) => store.truncate(&self.kv_dims, len),
                Storage::F16(store) => store.truncate(&self.kv_dims, len),
                Storage::Q8_0(store) => {
                    let blocks: Vec<usize> = self.kv_dims.iter().map(|d| d / QK).collect();
                    store.truncate(&blocks, len)
                }
            }
        }
    }

    /// Appends the keys and values of `n` new positions to layer `layer`, rounded to the
    /// cache's element type.
    pub fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        let kv_dim = self.kv_dims[layer];
        let positions = self.len + keys.len() / kv_dim.max(1);
        match &mut self.storage {
            Storage::F32(store) => store.reserve(layer, positions, kv_dim, self.capacity),
            Storage::F16(store) => store.reserve(layer, positions, kv_dim, self.capacity),
            Storage::Q8_0(store) => store.reserve(layer, positions, kv_dim / QK, self.capacity),
        }
        match &mut self.storage {
            Storage::F32(store) => store.append(layer, keys, values, |x| x),
            Storage::F16(store) => store.append(layer, keys, values, f16::from_f32),
            Storage::Q8_0(store) => store.append_q8_0(layer, keys, values, self.kv_dims[layer]),
        }
    }

    /// Marks `n` appended positions as stored, after every layer has appended them.
    pub fn commit(&mut self, n: usize) {
        self.len += n;
    }

    /// Keys and values of layer `layer` for all positions appended so far.
    pub fn layer(&self, layer: usize) -> KvLayer<'_> {
        match &self.storage {
            Storage::F32(store) => KvLayer::F32 { keys: &store.keys[layer], values: &store.values[layer] },
            Storage::F16(store) => KvLayer::F16 { keys: &store.keys[layer], values: &store.values[layer] },
            Storage::Q8_0(store) => KvLayer::Q8_0 { keys: &store.keys[layer], values: &store.values[layer] },
        }
    }

    /// Bytes of memory held now.
    pub fn bytes_used(&self) -> usize {
        match &self.storage {
            Storage::F32(store) => store.bytes(),
            Storage::F16(store) => store.bytes(),
            Storage::Q8_0(store) => store.bytes(),
        }
    }
}
