//! Training examples and packed batches.
//!
//! Packing: examples are placed one after another into sequences of at most `seq_len` tokens
//! in data order, a new sequence starting when the next example does not fit. The attention
//! mask keeps each token inside its own example and positions restart at 0 for every example,
//! so a packed example computes the same logits as it would alone. The tail of a sequence is
//! padding with no loss.

use candle_core::{DType, Device, Tensor};

use crate::model::ModelInput;

/// One tokenized example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Per token: whether the model is trained to predict it (assistant tokens in chat data).
    /// The prediction of token `i` comes from position `i - 1`, so `loss_mask[0]` has no effect.
    pub loss_mask: Vec<bool>,
}

impl Example {
    /// The positions whose next token is a target, in increasing order.
    pub fn target_positions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.ids.len().saturating_sub(1)).filter(|&t| self.loss_mask[t + 1])
    }

    /// Number of target tokens.
    pub fn n_targets(&self) -> usize {
        self.target_positions().count()
    }

    /// CRC-32 of the token ids, to tell whether cached teacher outputs belong to this example.
    pub fn fingerprint(&self) -> u32 {
        let bytes: Vec<u8> = self.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        crc32fast::hash(&bytes)
    }
}

/// The examples of one packed sequence, as indices into the data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSequence {
    /// Example indices, in order.
    pub examples: Vec<usize>,
    /// Total tokens.
    pub len: usize,
}

/// Packs the examples `order` into sequences of at most `seq_len` tokens, greedily in order.
/// Examples must already be at most `seq_len` tokens long.
pub fn pack(order: &[usize], examples: &[Example], seq_len: usize) -> Vec<PackedSequence> {
    let mut sequences = Vec::new();
    let mut current = PackedSequence { examples: Vec::new(), len: 0 };
    for &index in order {
        let len = examples[index].ids.len();
        if len == 0 {
            continue;
        }
        if current.len + len > seq_len && !current.examples.is_empty() {
            sequences.push(std::mem::replace(&mut current, PackedSequence { examples: Vec::new(), len: 0 }));
        }
        current.examples.push(index);
        current.len += len;
    }
    if !current.examples.is_empty() {
        sequences.push(current);
    }
    sequences
}

/// One micro-batch: the model input and the rows (positions) that carry a loss.
pub struct Batch {
    /// Model input `[batch, seq]`, with `seq` the longest packed sequence of the batch.
    pub input: ModelInput,
    /// Flat indices (`b · seq + t`) of the positions with a target, `[rows]` (u32).
    pub rows: Tensor,
    /// Target token of each row, `[rows]` (u32).
    pub targets: Tensor,
    /// For each row: the example index and the row's rank among that example's targets
    /// (the row index into cached teacher outputs).
    pub row_sources: Vec<(usize, usize)>,
}

impl Batch {
    /// Number of target tokens.
    pub fn n_rows(&self) -> usize {
        self.row_sources.len()
    }
}

/// Builds the micro-batch of `sequences`, padding each to the longest with `pad_id`.
pub fn make_batch(sequences: &[&PackedSequence], examples: &[Example], pad_id: u32, dtype: DType, device: &Device) -> candle_core::Result<Batch> {
    let batch = sequences.len();
    let seq = sequences.iter().map(|s| s.len).max().unwrap_or(1).max(1);
    let mut ids = vec![pad_id; batch * seq];
    // Padding gets its own segment, so no real token attends to it.
    let mut segments = vec![u32::MAX; batch * seq];
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut row_sources = Vec::new();
    for (b, sequence) in sequences.iter().enumerate() {
        let mut offset = b * seq;
        for (segment, &index) in sequence.examples.iter().enumerate() {
            let example = &examples[index];
            let n = example.ids.len();
            ids[offset..offset + n].copy_from_slice(&example.ids);
            segments[offset..offset + n].fill(segment as u32);
            for (rank, t) in example.target_positions().enumerate() {
                rows.push((offset + t) as u32);
                targets.push(example.ids[t + 1]);
                row_sources.push((index, rank));
            }
            offset += n;
        }
    }
    let n_rows = rows.len();
    Ok(Batch {
        input: ModelInput::new(&ids, &segments, batch, seq, dtype, device)?,
        rows: Tensor::from_vec(rows, n_rows, device)?,
        targets: Tensor::from_vec(targets, n_rows, device)?,
        row_sources,
    })
}
