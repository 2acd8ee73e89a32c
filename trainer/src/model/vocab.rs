//! Vocabulary pruning: a student that keeps only the tokens its data uses.
//!
//! A byte-level BPE tokenizer keeps working with a subset of its vocabulary when the subset is
//! closed: it contains every single-character token (the byte alphabet), the added (special)
//! tokens, and both parts of every merge whose result it contains. The pruned tokenizer keeps the
//! merges whose results are kept, in their original order. Any text whose tokens were all kept
//! is then split exactly as before, because BPE applies the lowest-ranked applicable merge and
//! every merge that text used is still there. Other text falls back to shorter pieces. The
//! embedding and output rows of the kept tokens are copied in order of their old ids.

use std::collections::{BTreeSet, HashMap};

use candle_core::{Device, Tensor};
use serde_json::Value;

use super::Decoder;
use crate::error::{Result, TrainError};
use crate::train::batch::Example;

/// Marks a teacher token that the student does not keep.
const DROPPED: u32 = u32::MAX;

/// The correspondence between a teacher's token ids and a pruned student's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabMap {
    /// Teacher id of each student id, increasing.
    teacher_ids: Vec<u32>,
    /// Student id of each teacher id, or [`DROPPED`].
    student_ids: Vec<u32>,
}

impl VocabMap {
    /// Builds the map that keeps `kept` (teacher ids) of a vocabulary of `teacher_vocab`.
    pub fn new(kept: &BTreeSet<u32>, teacher_vocab: usize) -> Result<VocabMap> {
        if let Some(&bad) = kept.iter().find(|&&id| id as usize >= teacher_vocab) {
            return Err(TrainError::Incompatible { message: format!("token id {bad} is outside the teacher's vocabulary of {teacher_vocab}") });
        }
        let teacher_ids: Vec<u32> = kept.iter().copied().collect();
        let mut student_ids = vec![DROPPED; teacher_vocab];
        for (student, &teacher) in teacher_ids.iter().enumerate() {
            student_ids[teacher as usize] = student as u32;
        }
        Ok(VocabMap { teacher_ids, student_ids })
    }

    /// Tokens the student keeps.
    pub fn len(&self) -> usize {
        self.teacher_ids.len()
    }

    /// Returns whether the student keeps no token.
    pub fn is_empty(&self) -> bool {
        self.teacher_ids.is_empty()
    }

    /// Tokens of the teacher.
    pub fn teacher_vocab(&self) -> usize {
        self.student_ids.len()
    }

    /// Returns the teacher id of each student id, in order.
    pub fn teacher_ids(&self) -> &[u32] {
        &self.teacher_ids
    }

    /// Returns the teacher ids as a `[student vocab]` u32 tensor, for gathering teacher logits.
    pub fn teacher_ids_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.teacher_ids.clone(), self.teacher_ids.len(), device)
    }

    /// Returns the student id of teacher token `id`, or `None` when the student dropped it.
    pub fn student_id(&self, id: u32) -> Option<u32> {
        self.student_ids.get(id as usize).copied().filter(|&s| s != DROPPED)
    }

    /// `example` in student ids, or the first teacher id the student lacks.
    pub fn to_student(&self, example: &Example) -> std::result::Result<Example, u32> {
        let ids = example.ids.iter().map(|&id| self.student_id(id).ok_or(id)).collect::<std::result::Result<Vec<u32>, u32>>()?;
        Ok(Example { ids, loss_mask: example.loss_mask.clone() })
    }
}

/// Splits a merge into its two parts: `["a", "b"]` (current tokenizer.json) or `"a b"` (older files).
fn merge_parts(merge: &Value) -> Option<(String, String)> {
    match merge {
        Value::Array(parts) if parts.len() == 2 => Some((parts[0].as_str()?.to_string(), parts[1].as_str()?.to_string())),
        Value::String(text) => text.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())),
        _ => None,
    }
}

fn tokenizer_error(message: String) -> TrainError {
    TrainError::Incompatible { message: format!("cannot prune the vocabulary: {message}") }
}

/// The parts of a BPE tokenizer.json that pruning reads.
struct Bpe<'a> {
    vocab: &'a serde_json::Map<String, Value>,
    merges: &'a [Value],
    added: Vec<u32>,
}

fn bpe(tokenizer: &Value) -> Result<Bpe<'_>> {
    let model = &tokenizer["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(tokenizer_error(format!("the tokenizer model is {}, and only BPE vocabularies can be pruned", model["type"])));
    }
    let vocab = model["vocab"].as_object().ok_or_else(|| tokenizer_error("tokenizer.json has no model.vocab object".into()))?;
    let merges = model["merges"].as_array().map_or(&[][..], |m| m.as_slice());
    let added = tokenizer["added_tokens"].as_array().map_or(&[][..], |a| a.as_slice()).iter().filter_map(|t| t["id"].as_u64()).map(|id| id as u32).collect();
    Ok(Bpe { vocab, merges, added })
}

/// Closes `used` (teacher ids) under the tokenizer: adds the added tokens, every
/// single-character token and `extra`, then both parts of every merge whose result is kept,
/// until nothing changes.
pub fn closed_keep_set(tokenizer_json: &[u8], used: &BTreeSet<u32>, extra: &[u32]) -> Result<BTreeSet<u32>> {
    let tokenizer: Value = serde_json::from_slice(tokenizer_json).map_err(|e| tokenizer_error(format!("tokenizer.json is not JSON: {e}")))?;
    let bpe = bpe(&tokenizer)?;
    let id_of = |text: &str| bpe.vocab.get(text).and_then(Value::as_u64).map(|id| id as u32);
    let mut kept: BTreeSet<u32> = used.iter().chain(extra).chain(&bpe.added).copied().collect();
    kept.extend(bpe.vocab.iter().filter(|(text, _)| text.chars().count() == 1).filter_map(|(_, id)| id.as_u64()).map(|id| id as u32));
    // The merges that make each token, by the resulting token's id.
    let mut made_by: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
    for merge in bpe.merges {
        let (a, b) = merge_parts(merge).ok_or_else(|| tokenizer_error(format!("merge {merge} is neither \"a b\" nor [\"a\", \"b\"]")))?;
        if let (Some(result), Some(a_id), Some(b_id)) = (id_of(&format!("{a}{b}")), id_of(&a), id_of(&b)) {
            made_by.entry(result).or_default().push((a_id, b_id));
        }
    }
    let mut pending: Vec<u32> = kept.iter().copied().collect();
    while let Some(id) = pending.pop() {
        for &(a, b) in made_by.get(&id).map_or(&[][..], |v| v.as_slice()) {
            for part in [a, b] {
                if kept.insert(part) {
                    pending.push(part);
                }
            }
        }
    }
    Ok(kept)
}

/// Rewrites a BPE tokenizer.json for the kept tokens of `map`: the vocabulary and the added
/// tokens renumbered, the merges whose results are dropped removed.
pub fn prune_tokenizer_json(tokenizer_json: &[u8], map: &VocabMap) -> Result<Vec<u8>> {
    let mut tokenizer: Value = serde_json::from_slice(tokenizer_json).map_err(|e| tokenizer_error(format!("tokenizer.json is not JSON: {e}")))?;
    let (vocab, merges) = {
        let bpe = bpe(&tokenizer)?;
        let id_of = |text: &str| bpe.vocab.get(text).and_then(Value::as_u64).map(|id| id as u32);
        let mut vocab = serde_json::Map::new();
        let mut by_id: Vec<(u32, &String)> = bpe.vocab.iter().filter_map(|(text, id)| Some((map.student_id(id.as_u64()? as u32)?, text))).collect();
        by_id.sort_unstable();
        for (id, text) in by_id {
            vocab.insert(text.clone(), Value::from(id));
        }
        let mut merges = Vec::new();
        for merge in bpe.merges {
            let (a, b) = merge_parts(merge).ok_or_else(|| tokenizer_error(format!("merge {merge} is neither \"a b\" nor [\"a\", \"b\"]")))?;
            let kept = |text: &str| id_of(text).and_then(|id| map.student_id(id)).is_some();
            if kept(&format!("{a}{b}")) && kept(&a) && kept(&b) {
                merges.push(merge.clone());
            }
        }
        (vocab, merges)
    };
    tokenizer["model"]["vocab"] = Value::Object(vocab);
    tokenizer["model"]["merges"] = Value::Array(merges);
    if let Some(added) = tokenizer["added_tokens"].as_array_mut() {
        for token in added.iter_mut() {
            let old = token["id"].as_u64().ok_or_else(|| tokenizer_error(format!("added token {token} has no id")))? as u32;
            let new = map.student_id(old).ok_or_else(|| tokenizer_error(format!("added token {} (id {old}) is not kept", token["content"])))?;
            token["id"] = Value::from(new);
        }
    }
    serde_json::to_vec(&tokenizer).map_err(|e| tokenizer_error(format!("cannot write tokenizer.json: {e}")))
}

/// Builds the student of `model` that keeps the tokens `used` (teacher ids) and the tokens
/// the tokenizer needs to encode any text with them, as the module comment explains. Returns
/// the student and the id map.
pub fn prune_vocabulary(model: &Decoder, used: &BTreeSet<u32>) -> Result<(Decoder, VocabMap)> {
    let map = keep_map(model, used)?;
    let student = prune_to(model, &map)?;
    Ok((student, map))
}

/// Builds the student of `model` that keeps the tokens of `map`, a map made for `model`'s
/// vocabulary that contains its special tokens (as [`data_vocabulary`] returns).
pub fn prune_to(model: &Decoder, map: &VocabMap) -> Result<Decoder> {
    let tokenizer_json = model_tokenizer(model)?;
    let metadata = &model.metadata;
    if map.teacher_vocab() != metadata.vocab_size as usize {
        return Err(tokenizer_error(format!("the map is for a vocabulary of {} tokens, but the model has {}", map.teacher_vocab(), metadata.vocab_size)));
    }
    let to_student = |id: u32| map.student_id(id).ok_or_else(|| tokenizer_error(format!("special token {id} is not kept")));
    let mut pruned = metadata.clone();
    pruned.vocab_size = map.len() as u32;
    pruned.bos_token_id = metadata.bos_token_id.map(to_student).transpose()?;
    pruned.eos_token_ids = metadata.eos_token_ids.iter().map(|&id| to_student(id)).collect::<Result<_>>()?;
    pruned.pad_token_id = metadata.pad_token_id.map(to_student).transpose()?;
    let rows = map.teacher_ids_tensor(model.device())?;
    let mut tensors = HashMap::new();
    for name in model.names() {
        let weight = model.weight(name);
        let weight = if name == "token_embd" || name == "output" { weight.index_select(&rows, 0)? } else { weight.copy()? };
        tensors.insert(name.clone(), weight);
    }
    let json = prune_tokenizer_json(tokenizer_json, map)?;
    Decoder::from_tensors(pruned, Some(json), tensors, std::path::Path::new("<vocabulary-pruned student>"), model.dtype(), model.device())
}

fn model_tokenizer(model: &Decoder) -> Result<&[u8]> {
    model.tokenizer_json.as_deref().ok_or_else(|| tokenizer_error("the model has no tokenizer.json; load it from a directory or GGUF that has one".into()))
}

/// Builds the map that keeps `used` of `model`'s tokens, closed with its special tokens.
fn keep_map(model: &Decoder, used: &BTreeSet<u32>) -> Result<VocabMap> {
    let metadata = &model.metadata;
    let special: Vec<u32> = metadata.bos_token_id.iter().chain(&metadata.eos_token_ids).chain(metadata.pad_token_id.iter()).copied().collect();
    let kept = closed_keep_set(model_tokenizer(model)?, used, &special)?;
    VocabMap::new(&kept, metadata.vocab_size as usize)
}

/// Chooses the vocabulary a student of `model` needs for `examples` (in `model`'s ids). It
/// contains the tokens they use, closed as in [`closed_keep_set`] with the special tokens.
pub fn data_vocabulary(model: &Decoder, examples: &[&[Example]]) -> Result<VocabMap> {
    let used: BTreeSet<u32> = examples.iter().flat_map(|set| set.iter()).flat_map(|example| example.ids.iter().copied()).collect();
    keep_map(model, &used)
}
