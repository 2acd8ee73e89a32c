//! Builds a smaller student from a teacher's weights: a subset of its layers, each with fewer
//! feed-forward channels.

use std::collections::HashMap;

use candle_core::{Tensor, D};
use tinyllm::format::{LayerDims, Metadata};

use super::Decoder;
use crate::error::{Result, TrainError};

/// How feed-forward channels are chosen when a student keeps fewer than the teacher has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelRule {
    /// The first `ffn_dim` channels.
    First,
    /// The `ffn_dim` channels with the largest `‖gate_j‖₂ · ‖up_j‖₂ · ‖down_j‖₂` (row `j` of the
    /// gate and up projections, column `j` of the down projection), kept in their original
    /// order. A weight-magnitude proxy for the channel's contribution to the output.
    Magnitude,
}

/// Selects the feed-forward channels of layer `layer` to keep, in increasing order.
fn select_channels(teacher: &Decoder, layer: usize, keep: usize, rule: ChannelRule) -> Result<Vec<u32>> {
    let total = teacher.metadata.layers[layer].ffn_dim as usize;
    if rule == ChannelRule::First {
        return Ok((0..keep as u32).collect());
    }
    let weight = |short: &str| teacher.weight(&format!("layers.{layer}.{short}"));
    let row_norm = |t: Tensor| -> candle_core::Result<Vec<f32>> { t.to_dtype(candle_core::DType::F32)?.sqr()?.sum(D::Minus1)?.sqrt()?.to_vec1() };
    let gate = row_norm(weight("ffn_gate"))?;
    let up = row_norm(weight("ffn_up"))?;
    let down = row_norm(weight("ffn_down").t()?.contiguous()?)?;
    let mut scored: Vec<(f32, u32)> = (0..total).map(|j| (gate[j] * up[j] * down[j], j as u32)).collect();
    // Largest score first; ties keep the lower channel index.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut kept: Vec<u32> = scored[..keep].iter().map(|&(_, j)| j).collect();
    kept.sort_unstable();
    Ok(kept)
}

/// Builds a student that keeps the teacher layers `layers` (in the given order) with `ffn_dim`
/// feed-forward channels each (`None` keeps the teacher's width), chosen by `rule`. Attention
/// heads, embeddings, norms and the output head are copied unchanged.
pub fn student_from_teacher(teacher: &Decoder, layers: &[usize], ffn_dim: Option<usize>, rule: ChannelRule) -> Result<Decoder> {
    let n_teacher = teacher.metadata.layers.len();
    if layers.is_empty() {
        return Err(TrainError::Incompatible { message: "student.layers is empty; list the teacher layers to keep, for example [0, 2, 4]".into() });
    }
    if let Some(&bad) = layers.iter().find(|&&l| l >= n_teacher) {
        return Err(TrainError::Incompatible { message: format!("student.layers contains {bad}, but the teacher has layers 0 to {}", n_teacher - 1) });
    }
    let mut tensors = HashMap::new();
    let mut dims: Vec<LayerDims> = Vec::with_capacity(layers.len());
    for (new, &old) in layers.iter().enumerate() {
        let teacher_dims = teacher.metadata.layers[old];
        let keep = ffn_dim.unwrap_or(teacher_dims.ffn_dim as usize);
        if keep == 0 || keep > teacher_dims.ffn_dim as usize {
            return Err(TrainError::Incompatible {
                message: format!("student.ffn_dim is {keep}, but teacher layer {old} has {} channels; choose 1 to {}", teacher_dims.ffn_dim, teacher_dims.ffn_dim),
            });
        }
        let channels = select_channels(teacher, old, keep, rule)?;
        let index = Tensor::from_vec(channels, keep, teacher.device())?;
        for short in ["attn_norm", "attn_q", "attn_q_bias", "attn_k", "attn_k_bias", "attn_v", "attn_v_bias", "attn_q_norm", "attn_k_norm", "attn_output", "ffn_norm"] {
            if let Some(w) = teacher.weight_opt(&format!("layers.{old}.{short}")) {
                tensors.insert(format!("layers.{new}.{short}"), w.copy()?);
            }
        }
        let w = |short: &str| teacher.weight(&format!("layers.{old}.{short}"));
        tensors.insert(format!("layers.{new}.ffn_gate"), w("ffn_gate").index_select(&index, 0)?);
        tensors.insert(format!("layers.{new}.ffn_up"), w("ffn_up").index_select(&index, 0)?);
        tensors.insert(format!("layers.{new}.ffn_down"), w("ffn_down").index_select(&index, 1)?);
        dims.push(LayerDims { ffn_dim: keep as u32, ..teacher_dims });
    }
    for name in ["token_embd", "output_norm", "output"] {
        if let Some(w) = teacher.weight_opt(name) {
            tensors.insert(name.to_string(), w.copy()?);
        }
    }
    let metadata = Metadata { layers: dims, name: teacher.metadata.name.as_ref().map(|n| format!("{n} (student)")), ..teacher.metadata.clone() };
    Decoder::from_tensors(metadata, teacher.tokenizer_json.clone(), tensors, std::path::Path::new("<student from teacher>"), teacher.dtype(), teacher.device())
}
