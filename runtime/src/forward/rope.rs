//! Rotary position embedding (RoPE).

use alloc::vec::Vec;

use crate::format::metadata::{Rope, RopeLayout, RopeScaling};

/// The inverse frequencies of one head dimension: `head_dim / 2` values.
#[derive(Debug, Clone)]
pub struct RopeTable {
    head_dim: usize,
    layout: RopeLayout,
    inv_freq: Vec<f32>,
}

impl RopeTable {
    /// Builds the table of `rope` for heads of `head_dim` dimensions.
    pub fn new(rope: &Rope, head_dim: usize) -> RopeTable {
        RopeTable { head_dim, layout: rope.layout, inv_freq: inverse_frequencies(rope, head_dim) }
    }

    /// Head dimension this table serves.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Rotates every head in `x` (`n_heads` × `head_dim`) for position `position`.
    pub fn apply(&self, x: &mut [f32], position: usize) {
        let mut angles = Vec::new();
        self.sin_cos(position..position + 1, &mut angles);
        self.rotate(x, &angles);
    }

    /// Writes `[sin, cos]` of every angle of `positions` into `out`: `head_dim / 2` pairs per
    /// position. A forward pass computes them once for all heads and layers.
    pub fn sin_cos(&self, positions: core::ops::Range<usize>, out: &mut Vec<[f32; 2]>) {
        out.clear();
        for position in positions {
            out.extend(self.inv_freq.iter().map(|&freq| {
                let angle = freq * position as f32;
                [libm::sinf(angle), libm::cosf(angle)]
            }));
        }
    }

    /// Rotates every head in `x` (`n_heads` × `head_dim`) by the `head_dim / 2` angles of one
    /// position, as [`RopeTable::sin_cos`] gives them.
    pub fn rotate(&self, x: &mut [f32], angles: &[[f32; 2]]) {
        let half = self.head_dim / 2;
        let angles = &angles[..half];
        for head in x.chunks_exact_mut(self.head_dim) {
            for (i, &[sin, cos]) in angles.iter().enumerate() {
                let (a, b) = match self.layout {
                    RopeLayout::Half => (i, i + half),
                    RopeLayout::Interleaved => (2 * i, 2 * i + 1),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos - x1 * sin;
                head[b] = x1 * cos + x0 * sin;
            }
        }
    }
}

/// Computes `inv_freq[i] = theta^(-2i / head_dim)`, then applies the model's scaling.
///
/// The values are rounded to f32 as Hugging Face transformers computes them, so angles
/// agree with it to the last bits for the positions a context holds.
pub fn inverse_frequencies(rope: &Rope, head_dim: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let exponent = (2 * i) as f32 / head_dim as f32;
            1.0 / libm::powf(rope.theta as f32, exponent)
        })
        .collect();
    match rope.scaling {
        None => {}
        Some(RopeScaling::Linear { factor }) => {
            for f in inv_freq.iter_mut() {
                *f /= factor as f32;
            }
        }
        Some(RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position }) => {
            let original = original_max_position as f64;
            let low_freq_wavelen = original / low_freq_factor;
            let high_freq_wavelen = original / high_freq_factor;
            for f in inv_freq.iter_mut() {
                let freq = *f as f64;
                let wavelen = 2.0 * core::f64::consts::PI / freq;
                *f = if wavelen < high_freq_wavelen {
                    freq as f32
                } else if wavelen > low_freq_wavelen {
                    (freq / factor) as f32
                } else {
                    let smooth = (original / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    ((1.0 - smooth) * freq / factor + smooth * freq) as f32
                };
            }
        }
    }
    inv_freq
}
