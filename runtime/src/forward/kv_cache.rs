//! The key/value cache of one session.

use alloc::vec::Vec;

use crate::format::Metadata;

/// Keys and values of every past position, per layer, in f32.
///
/// Layer `l` stores `len` rows of `n_kv_heads * head_dim` values for keys and the same for
/// values. Memory grows with the positions used, up to `capacity` positions.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    kv_dims: Vec<usize>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Creates an empty cache for `capacity` positions of the model described by `metadata`.
    pub fn new(metadata: &Metadata, capacity: usize) -> KvCache {
        let kv_dims: Vec<usize> = metadata.layers.iter().map(|l| (l.n_kv_heads * l.head_dim) as usize).collect();
        KvCache {
            keys: kv_dims.iter().map(|_| Vec::new()).collect(),
            values: kv_dims.iter().map(|_| Vec::new()).collect(),
            kv_dims,
            len: 0,
            capacity,
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
        for layer in self.keys.iter_mut().chain(self.values.iter_mut()) {
            layer.clear();
        }
    }

    /// Drops positions from `len` on, keeping the first `len`.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            for (layer, &dim) in self.kv_dims.iter().enumerate() {
                self.keys[layer].truncate(len * dim);
                self.values[layer].truncate(len * dim);
            }
        }
    }

    /// Appends the keys and values of `n` new positions to layer `layer`.
    pub fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        self.keys[layer].extend_from_slice(keys);
        self.values[layer].extend_from_slice(values);
    }

    /// Marks `n` appended positions as stored, after every layer has appended them.
    pub fn commit(&mut self, n: usize) {
        self.len += n;
    }

    /// Keys of layer `layer` for all positions appended so far, `positions` × `kv_dim`.
    pub fn keys(&self, layer: usize) -> &[f32] {
        &self.keys[layer]
    }

    /// Values of layer `layer` for all positions appended so far, `positions` × `kv_dim`.
    pub fn values(&self, layer: usize) -> &[f32] {
        &self.values[layer]
    }

    /// Bytes of memory held now.
    pub fn bytes_used(&self) -> usize {
        self.keys.iter().chain(self.values.iter()).map(|layer| layer.capacity() * 4).sum()
    }
}
