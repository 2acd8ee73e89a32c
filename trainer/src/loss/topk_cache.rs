//! The teacher's top-k log-probabilities, computed once per data set and reused every epoch.
//!
//! File layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `TLTOPK01` |
//! | 4 | format version (1) |
//! | 4 | k |
//! | 4 | vocabulary size |
//! | 4 | value type: 0 = f32, 1 = f16 |
//! | 8 | number of examples |
//! | 8 | number of rows |
//! | 16 × examples | per example: first row (u64), rows (u32), CRC-32 of its token ids (u32) |
//! | rows × k × 4 | token ids (u32), k per row, largest probability first |
//! | rows × k × (4 or 2) | log-probabilities at temperature 1, k per row |
//! | 4 | CRC-32 of every byte before it |
//!
//! A row is a target position of an example, in the order of [`Example::target_positions`].

use std::io::Write;
use std::path::Path;

use candle_core::{DType, Tensor, D};
use half::f16;

use crate::error::{Result, TrainError};
use crate::model::vocab::VocabMap;
use crate::model::{Decoder, ModelInput};
use crate::train::batch::Example;

const MAGIC: &[u8; 8] = b"TLTOPK01";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 * 4 + 8 * 2;

/// Storage type of the cached log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// 4 bytes a value.
    F32,
    /// 2 bytes a value; log-probabilities keep about 3 significant digits.
    F16,
}

/// Location of one example's rows in the row arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExampleRows {
    first_row: u64,
    rows: u32,
    fingerprint: u32,
}

/// The teacher's top-k tokens and log-probabilities for every target position of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct TopkCache {
    k: usize,
    vocab_size: u32,
    value_type: ValueType,
    examples: Vec<ExampleRows>,
    ids: Vec<u32>,
    /// Log-probabilities, already rounded to `value_type`.
    log_probs: Vec<f32>,
}

impl TopkCache {
    /// Runs the teacher over every example (one example per forward pass) and keeps the `k`
    /// most likely tokens at each target position.
    pub fn build(teacher: &Decoder, examples: &[Example], k: usize, value_type: ValueType, progress: impl FnMut(usize)) -> Result<TopkCache> {
        TopkCache::build_for(teacher, None, examples, k, value_type, progress)
    }

    /// As [`TopkCache::build`], for a student whose vocabulary is `student_vocab` of the
    /// teacher's: the teacher's log-probabilities are taken over the student's tokens only and
    /// stored with student ids. `examples` are in teacher ids.
    pub fn build_for(teacher: &Decoder, student_vocab: Option<&VocabMap>, examples: &[Example], k: usize, value_type: ValueType, mut progress: impl FnMut(usize)) -> Result<TopkCache> {
        let columns = student_vocab.map(|map| map.teacher_ids_tensor(teacher.device())).transpose()?;
        let vocab = student_vocab.map_or(teacher.metadata.vocab_size as usize, VocabMap::len);
        if k == 0 || k > vocab {
            return Err(TrainError::Incompatible { message: format!("distill.top_k is {k}; choose 1 to the vocabulary size {vocab}") });
        }
        let mut cache = TopkCache { k, vocab_size: vocab as u32, value_type, examples: Vec::with_capacity(examples.len()), ids: Vec::new(), log_probs: Vec::new() };
        for (index, example) in examples.iter().enumerate() {
            let positions: Vec<u32> = example.target_positions().map(|t| t as u32).collect();
            let first_row = (cache.ids.len() / k) as u64;
            cache.examples.push(ExampleRows { first_row, rows: positions.len() as u32, fingerprint: example.fingerprint() });
            if !positions.is_empty() {
                let input = ModelInput::single(&example.ids, teacher.dtype(), teacher.device())?;
                let rows = Tensor::from_vec(positions.clone(), positions.len(), teacher.device())?;
                let mut logits = teacher.forward_rows(&input, &rows)?;
                if let Some(columns) = &columns {
                    logits = logits.index_select(columns, 1)?;
                }
                let log_probs = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?;
                for row in log_probs.to_vec2::<f32>()? {
                    let mut order: Vec<u32> = (0..vocab as u32).collect();
                    // Largest first; ties go to the lower token id, so the order is deterministic.
                    let by_value = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
                    order.select_nth_unstable_by(k - 1, by_value);
                    order.truncate(k);
                    order.sort_by(by_value);
                    for id in order {
                        cache.ids.push(id);
                        cache.log_probs.push(round(row[id as usize], value_type));
                    }
                }
            }
            progress(index + 1);
        }
        Ok(cache)
    }

    /// Number of tokens kept per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of examples.
    pub fn n_examples(&self) -> usize {
        self.examples.len()
    }

    /// Checks that the cache was built for exactly these examples and this vocabulary.
    pub fn check_matches(&self, examples: &[Example], vocab_size: u32, path: &Path) -> Result<()> {
        let mismatch = |message: String| TrainError::TopkCache { path: path.to_path_buf(), message: format!("{message}; delete the file to rebuild it for the current data and teacher") };
        if self.vocab_size != vocab_size {
            return Err(mismatch(format!("built for vocabulary size {}, the student has {vocab_size}", self.vocab_size)));
        }
        if self.examples.len() != examples.len() {
            return Err(mismatch(format!("holds {} examples, the data set has {}", self.examples.len(), examples.len())));
        }
        for (i, (cached, example)) in self.examples.iter().zip(examples).enumerate() {
            if cached.fingerprint != example.fingerprint() || cached.rows as usize != example.n_targets() {
                return Err(mismatch(format!("example {i} differs from the one the cache was built for")));
            }
        }
        Ok(())
    }

    /// Returns the ids and log-probabilities (`k` each) of target row `rank` of example `example`.
    pub fn row(&self, example: usize, rank: usize) -> (&[u32], &[f32]) {
        let start = (self.examples[example].first_row as usize + rank) * self.k;
        (&self.ids[start..start + self.k], &self.log_probs[start..start + self.k])
    }

    /// Encodes the cache in the file layout above.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n_rows = self.ids.len() / self.k.max(1);
        let mut out = Vec::with_capacity(HEADER_BYTES + self.examples.len() * 16 + self.ids.len() * 8 + 4);
        out.extend_from_slice(MAGIC);
        for value in [VERSION, self.k as u32, self.vocab_size, matches!(self.value_type, ValueType::F16) as u32] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&(self.examples.len() as u64).to_le_bytes());
        out.extend_from_slice(&(n_rows as u64).to_le_bytes());
        for example in &self.examples {
            out.extend_from_slice(&example.first_row.to_le_bytes());
            out.extend_from_slice(&example.rows.to_le_bytes());
            out.extend_from_slice(&example.fingerprint.to_le_bytes());
        }
        for id in &self.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        for &value in &self.log_probs {
            match self.value_type {
                ValueType::F32 => out.extend_from_slice(&value.to_le_bytes()),
                ValueType::F16 => out.extend_from_slice(&f16::from_f32(value).to_le_bytes()),
            }
        }
        let checksum = crc32fast::hash(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Writes the cache to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes();
        crate::atomic::write_file_with(path, |file| file.write_all(&bytes))
    }

    /// Reads and checks a cache file.
    pub fn read(path: &Path) -> Result<TopkCache> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        TopkCache::from_bytes(&bytes).map_err(|message| TrainError::TopkCache { path: path.to_path_buf(), message: format!("{message}; delete the file to rebuild it") })
    }

    /// Decodes the file layout above.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<TopkCache, String> {
        if bytes.len() < HEADER_BYTES + 4 || &bytes[..8] != MAGIC {
            return Err("not a teacher top-k cache (magic TLTOPK01 missing)".into());
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(format!("checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is damaged or truncated"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().unwrap_or([0; 8]));
        if u32_at(8) != VERSION {
            return Err(format!("format version {} is not supported (expected {VERSION})", u32_at(8)));
        }
        let k = u32_at(12) as usize;
        let vocab_size = u32_at(16);
        let value_type = match u32_at(20) {
            0 => ValueType::F32,
            1 => ValueType::F16,
            other => return Err(format!("value type {other} is unknown (expected 0 for f32 or 1 for f16)")),
        };
        let n_examples = u64_at(24) as usize;
        let n_rows = u64_at(32) as usize;
        let value_bytes = if value_type == ValueType::F16 { 2 } else { 4 };
        let expected = n_examples.checked_mul(16).and_then(|e| n_rows.checked_mul(k)?.checked_mul(4 + value_bytes)?.checked_add(e)).and_then(|d| d.checked_add(HEADER_BYTES));
        if k == 0 || expected != Some(body.len()) {
            return Err(format!("size {} bytes does not match {n_examples} examples and {n_rows} rows of k = {k}", bytes.len()));
        }
        let mut at = HEADER_BYTES;
        let mut examples = Vec::with_capacity(n_examples);
        for _ in 0..n_examples {
            let entry = ExampleRows { first_row: u64_at(at), rows: u32_at(at + 8), fingerprint: u32_at(at + 12) };
            if entry.first_row + entry.rows as u64 > n_rows as u64 {
                return Err(format!("an example's rows {}..{} exceed the {n_rows} rows", entry.first_row, entry.first_row + entry.rows as u64));
            }
            examples.push(entry);
            at += 16;
        }
        let ids: Vec<u32> = (0..n_rows * k).map(|i| u32_at(at + 4 * i)).collect();
        if let Some(bad) = ids.iter().find(|&&id| id >= vocab_size) {
            return Err(format!("token id {bad} is outside the vocabulary of {vocab_size}"));
        }
        at += n_rows * k * 4;
        let log_probs = match value_type {
            ValueType::F32 => (0..n_rows * k).map(|i| f32::from_bits(u32_at(at + 4 * i))).collect(),
            ValueType::F16 => (0..n_rows * k).map(|i| f16::from_le_bytes([body[at + 2 * i], body[at + 2 * i + 1]]).to_f32()).collect(),
        };
        Ok(TopkCache { k, vocab_size, value_type, examples, ids, log_probs })
    }
}

fn round(value: f32, value_type: ValueType) -> f32 {
    match value_type {
        ValueType::F32 => value,
        ValueType::F16 => f16::from_f32(value).to_f32(),
    }
}
