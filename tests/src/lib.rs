//! Helpers shared by the cross-crate tests: locating inputs, reading reference files and
//! comparing logits.

pub mod fuzz_input;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The folder of committed fixtures.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The shared inputs folder (`TINYLLM_SHARED`, default `../shared` from the workspace root),
/// or `None` after printing why the calling test skips.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TINYLLM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping {test}: shared inputs not found at {} (set TINYLLM_SHARED)", dir.display());
        None
    }
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads a raw little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// A JSON array of integers as token ids.
pub fn ids(value: &Value) -> Vec<u32> {
    value.as_array().expect("an array of ids").iter().map(|v| v.as_u64().expect("an id") as u32).collect()
}

/// The largest absolute difference and the largest absolute reference value.
pub fn max_abs_diff(actual: &[f32], expected: &[f32]) -> (f32, f32) {
    assert_eq!(actual.len(), expected.len(), "logit counts differ");
    let diff = actual.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0f32, f32::max);
    let scale = expected.iter().map(|e| e.abs()).fold(0.0f32, f32::max);
    (diff, scale)
}

/// The position of the largest value; the first one wins a tie.
pub fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy decoding of `steps` tokens after `prompt`, without stopping at EOS.
pub fn greedy(model: &tinyllm::Model<'_>, prompt: &[u32], steps: usize) -> Vec<u32> {
    let mut session = tinyllm::Session::new(model, None);
    let mut logits = session.eval(prompt).expect("prompt fits").to_vec();
    let mut out = Vec::new();
    for _ in 0..steps {
        let next = argmax(&logits);
        out.push(next);
        logits = session.eval(&[next]).expect("token fits").to_vec();
    }
    out
}

/// Bytes copied into 64-byte aligned storage, as a memory map gives them and as
/// `Model::from_bytes` needs them.
pub struct AlignedBytes {
    storage: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

impl AlignedBytes {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> AlignedBytes {
        let mut storage = vec![Block([0; 64]); bytes.len().div_ceil(64)];
        for (block, chunk) in storage.iter_mut().zip(bytes.chunks(64)) {
            block.0[..chunk.len()].copy_from_slice(chunk);
        }
        AlignedBytes { storage, len: bytes.len() }
    }

    /// The copied bytes, starting at a 64-byte boundary.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: Block is 64 plain bytes with no padding, so the storage is a valid,
        // initialized byte slice of storage.len() * 64 bytes, and len is at most that.
        unsafe { std::slice::from_raw_parts(self.storage.as_ptr() as *const u8, self.len) }
    }
}
