//! Training losses: cross-entropy on the target tokens and logit distillation (forward KL,
//! reverse KL, Jensen-Shannon) at a temperature, over the full vocabulary or over the
//! teacher's top-k tokens.
//!
//! Every function returns a sum over rows (one row per target token). The trainer divides by
//! the number of target tokens of the whole optimizer step, so gradient accumulation gives
//! the same gradient as one large batch.

pub mod topk_cache;

use candle_core::{Tensor, D};
use candle_nn::ops::log_softmax;

use crate::error::Result;

/// The divergence that distillation minimizes, with `p` the teacher's and `q` the student's
/// distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// KL(p ‖ q): mass-covering, the classic distillation loss.
    ForwardKl,
    /// KL(q ‖ p): mode-seeking.
    ReverseKl,
    /// ½ KL(p ‖ m) + ½ KL(q ‖ m) with m = ½ (p + q): symmetric and bounded by ln 2.
    Jsd,
}

/// Sums the cross-entropy `-log softmax(logits)[target]` over rows. `logits` is `[rows, vocab]`,
/// `targets` is `[rows]` (u32).
pub fn cross_entropy_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let log_probs = log_softmax(logits, D::Minus1)?;
    let picked = log_probs.gather(&targets.unsqueeze(1)?, 1)?;
    Ok(picked.sum_all()?.neg()?)
}

/// Sums the divergence between per-row distributions given as log-probabilities over the same
/// support: `teacher` and `student`, both `[rows, n]` and normalized along the last axis.
pub fn divergence_sum(teacher: &Tensor, student: &Tensor, divergence: Divergence) -> Result<Tensor> {
    let kl = |log_a: &Tensor, log_b: &Tensor| -> candle_core::Result<Tensor> { log_a.exp()?.mul(&(log_a - log_b)?)?.sum_all() };
    let value = match divergence {
        Divergence::ForwardKl => kl(teacher, student)?,
        Divergence::ReverseKl => kl(student, teacher)?,
        Divergence::Jsd => {
            // log m = log(½ (e^a + e^b)) = max(a, b) + log(1 + e^-|a-b|) - ln 2, which stays
            // finite when both probabilities underflow.
            let larger = teacher.maximum(student)?;
            let gap = (teacher - student)?.abs()?.neg()?.exp()?;
            let log_m = ((larger + (gap + 1.0)?.log()?)? - std::f64::consts::LN_2)?;
            ((kl(teacher, &log_m)? + kl(student, &log_m)?)? * 0.5)?
        }
    };
    Ok(value)
}

/// Sums the distillation loss over rows on the full vocabulary: both logit sets `[rows, vocab]`
/// are divided by `temperature`, turned into log-probabilities, compared, and the sum is scaled
/// by `temperature²` so gradient magnitudes do not shrink as the temperature grows.
pub fn distill_full_sum(student_logits: &Tensor, teacher_logits: &Tensor, temperature: f64, divergence: Divergence) -> Result<Tensor> {
    let student = log_softmax(&(student_logits / temperature)?, D::Minus1)?;
    let teacher = log_softmax(&(teacher_logits.detach() / temperature)?, D::Minus1)?;
    Ok((divergence_sum(&teacher, &student, divergence)? * (temperature * temperature))?)
}

/// Sums the distillation loss over rows on the teacher's top-k tokens.
///
/// `teacher_ids` (`[rows, k]`, u32) and `teacher_log_probs` (`[rows, k]`) come from the teacher
/// at temperature 1. Both sides are renormalized over the same k tokens: the teacher as
/// `softmax(log_probs / T)` and the student as `softmax(logits[ids] / T)`. The student's mass
/// outside the top-k set is therefore ignored, and the loss is 0 when the student matches the
/// teacher on that set. The sum is scaled by `T²`.
pub fn distill_topk_sum(student_logits: &Tensor, teacher_ids: &Tensor, teacher_log_probs: &Tensor, temperature: f64, divergence: Divergence) -> Result<Tensor> {
    let picked = student_logits.gather(teacher_ids, 1)?;
    let student = log_softmax(&(picked / temperature)?, D::Minus1)?;
    let teacher = log_softmax(&(teacher_log_probs.to_dtype(student.dtype())? / temperature)?, D::Minus1)?;
    Ok((divergence_sum(&teacher, &student, divergence)? * (temperature * temperature))?)
}
