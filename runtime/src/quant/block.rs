//! Packed block types of quantized weights and activations.
//!
//! Every weight block covers `G` consecutive weights of one row (a group) with one scale. The
//! f16 fields are stored as little-endian byte pairs, so every block has alignment 1 and can be
//! viewed in place at any offset of a mapped file.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Weights per sub-block: the unit of the integer dot products, and the group size of
/// activations.
pub const QK: usize = 32;

/// Converts a little-endian f16 byte pair to f32.
#[inline(always)]
pub fn f16_to_f32(bytes: [u8; 2]) -> f32 {
    f16::from_bits(u16::from_le_bytes(bytes)).to_f32()
}

/// Converts f32 to a little-endian f16 byte pair, rounding to nearest even.
#[inline(always)]
pub fn f32_to_f16(value: f32) -> [u8; 2] {
    f16::from_f32(value).to_bits().to_le_bytes()
}

/// Q8_0: 32 signed 8-bit weights and an f16 scale; 34 bytes, 8.5 bits per weight.
///
/// Dequantization: `x[i] = d * qs[i]`. Identical to GGUF's Q8_0 block.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale `d` (f16, little-endian).
    pub d: [u8; 2],
    /// Quantized weights.
    pub qs: [i8; QK],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);

/// Q4_0 with groups of `32 * S` weights: 4-bit weights and one f16 scale per group.
/// `S = 1` is 18 bytes (4.5 bits per weight, identical to GGUF's Q4_0); `S = 2` is 34 bytes
/// for 64 weights (4.25 bits per weight); `S = 4` is 66 bytes for 128 weights (4.125 bits).
///
/// Sub-block `s` holds weights `32s..32s + 32` in `qs[s]`: byte `j` stores weight `32s + j` in
/// its low nibble and weight `32s + j + 16` in its high nibble.
/// Dequantization: `x[i] = (q[i] - 8) * d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockQ4_0G<const S: usize> {
    /// Scale `d` (f16, little-endian).
    pub d: [u8; 2],
    /// Packed nibbles, 16 bytes per sub-block of 32 weights.
    pub qs: [[u8; QK / 2]; S],
}

// SAFETY: the struct is repr(C) with fields of alignment 1 (byte arrays), so it has no
// padding, and every bit pattern of its bytes is a valid value.
unsafe impl<const S: usize> Zeroable for BlockQ4_0G<S> {}
// SAFETY: as above; it is also Copy and 'static.
unsafe impl<const S: usize> Pod for BlockQ4_0G<S> {}

/// Q4_0 with groups of 32 (GGUF's Q4_0).
pub type BlockQ4_0 = BlockQ4_0G<1>;
/// Q4_0 with groups of 64.
pub type BlockQ4_0G64 = BlockQ4_0G<2>;
/// Q4_0 with groups of 128.
pub type BlockQ4_0G128 = BlockQ4_0G<4>;
const _: () = assert!(core::mem::size_of::<BlockQ4_0G64>() == 34);
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(core::mem::size_of::<BlockQ4_0G128>() == 66);

/// Q4_1: 32 unsigned 4-bit weights, an f16 scale and an f16 minimum; 20 bytes, 5 bits per
/// weight. Identical to GGUF's Q4_1, so such files import without loss.
///
/// Byte `j` stores weight `j` in its low nibble and weight `j + 16` in its high nibble.
/// Dequantization: `x[i] = q[i] * d + m`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale `d` (f16, little-endian).
    pub d: [u8; 2],
    /// Minimum `m` (f16, little-endian).
    pub m: [u8; 2],
    /// Packed nibbles.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);

/// An activation group quantized on the fly: 32 signed 8-bit values, an f32 scale and the
/// sum of the quantized values; 40 bytes.
///
/// Dequantization: `x[i] = d * qs[i]`. `sum` lets Q4_0 and Q4_1 kernels apply their offset
/// (`-8` and `m`) once per block instead of once per weight.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8Act {
    /// Scale `d`.
    pub d: f32,
    /// Sum of `qs`.
    pub sum: i32,
    /// Quantized values.
    pub qs: [i8; QK],
}
const _: () = assert!(core::mem::size_of::<BlockQ8Act>() == 40);

/// An activation group quantized to 16 bits for 8-bit weights: 32 signed 16-bit values and
/// an f32 scale; 68 bytes.
///
/// Dequantization: `x[i] = d * qs[i]`. 8-bit weights get 16-bit activations because int8
/// activations (step `max|x| / 127`) cost more accuracy than the Q8_0 weights themselves: on
/// SmolLM2-135M they flip the first greedy token of a chat answer whose top-2 logit margin is
/// 0.08, while 16-bit activations leave it unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ16Act {
    /// Scale `d`.
    pub d: f32,
    /// Quantized values.
    pub qs: [i16; QK],
}
const _: () = assert!(core::mem::size_of::<BlockQ16Act>() == 68);

impl Default for BlockQ16Act {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl Default for BlockQ8Act {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl BlockQ8_0 {
    /// Dequantizes the block into `out`.
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (x, &q) in out.iter_mut().zip(&self.qs) {
            *x = f32::from(q) * d;
        }
    }
}

impl<const S: usize> BlockQ4_0G<S> {
    /// Weights per block.
    pub const GROUP: usize = QK * S;

    /// Dequantizes the block into `out` (`32 * S` values).
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        for (sub, qs) in self.qs.iter().enumerate() {
            let out = &mut out[sub * QK..(sub + 1) * QK];
            for (j, &byte) in qs.iter().enumerate() {
                out[j] = f32::from(i16::from(byte & 0x0F) - 8) * d;
                out[j + QK / 2] = f32::from(i16::from(byte >> 4) - 8) * d;
            }
        }
    }
}

impl BlockQ4_1 {
    /// Dequantizes the block into `out`.
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = f16_to_f32(self.d);
        let m = f16_to_f32(self.m);
        for (j, &byte) in self.qs.iter().enumerate() {
            out[j] = f32::from(byte & 0x0F) * d + m;
            out[j + QK / 2] = f32::from(byte >> 4) * d + m;
        }
    }
}
