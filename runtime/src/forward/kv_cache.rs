//! The key/value cache of one session.

use alloc::vec::Vec;

use half::f16;

use crate::format::Metadata;

/// The element type of a KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    /// binary32: exact, 4 bytes a value.
    #[default]
    F32,
    /// binary16: 2 bytes a value. Keys and values after RoPE and projection stay far inside
    /// f16's range; the rounding (relative 2^-11) is what changes the logits.
    F16,
}

impl KvType {
    /// Bytes of one stored value.
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    /// Parses `f32` or `f16`.
    pub fn from_name(name: &str) -> Option<KvType> {
        match name {
            "f32" => Some(KvType::F32),
            "f16" => Some(KvType::F16),
            _ => None,
        }
    }

    /// The name `from_name` reads.
    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
        }
    }
}

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

    fn truncate(&mut self, kv_dims: &[usize], len: usize) {
        for (layer, &dim) in kv_dims.iter().enumerate() {
            self.keys[layer].truncate(len * dim);
            self.values[layer].truncate(len * dim);
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

#[derive(Debug, Clone)]
enum Storage {
    F32(Store<f32>),
    F16(Store<f16>),
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
}

/// Keys and values of every past position, per layer, in f32 or f16.
///
/// Layer `l` stores `len` rows of `n_kv_heads * head_dim` values for keys and the same for
/// values. Memory grows with the positions used, up to `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    storage: Storage,
    kv_dims: Vec<usize>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Creates an empty f32 cache for `capacity` positions of the model described by `metadata`.
    pub fn new(metadata: &Metadata, capacity: usize) -> KvCache {
        KvCache::with_type(metadata, capacity, KvType::F32)
    }

    /// Creates an empty cache of element type `kv_type`.
    pub fn with_type(metadata: &Metadata, capacity: usize, kv_type: KvType) -> KvCache {
        let kv_dims: Vec<usize> = metadata.layers.iter().map(|l| (l.n_kv_heads * l.head_dim) as usize).collect();
        let storage = match kv_type {
            KvType::F32 => Storage::F32(Store::new(kv_dims.len())),
            KvType::F16 => Storage::F16(Store::new(kv_dims.len())),
        };
        KvCache { storage, kv_dims, len: 0, capacity }
    }

    /// The element type.
    pub fn kv_type(&self) -> KvType {
        match self.storage {
            Storage::F32(_) => KvType::F32,
            Storage::F16(_) => KvType::F16,
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
        }
    }

    /// Drops positions from `len` on, keeping the first `len`.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            match &mut self.storage {
                Storage::F32(store) => store.truncate(&self.kv_dims, len),
                Storage::F16(store) => store.truncate(&self.kv_dims, len),
            }
        }
    }

    /// Appends the keys and values of `n` new positions to layer `layer`, rounded to the
    /// cache's element type.
    pub fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        match &mut self.storage {
            Storage::F32(store) => store.append(layer, keys, values, |x| x),
            Storage::F16(store) => store.append(layer, keys, values, f16::from_f32),
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
        }
    }

    /// Bytes of memory held now.
    pub fn bytes_used(&self) -> usize {
        match &self.storage {
            Storage::F32(store) => store.bytes(),
            Storage::F16(store) => store.bytes(),
        }
    }
}
