//! Reads training data files into [`Example`]s.

use std::path::Path;

use tinyllm::format::Metadata;

use crate::config::DataFormat;
use crate::data::render::ChatTemplate;
use crate::error::{Result, TrainError};
use crate::train::batch::Example;

/// Reads `path` in `format` for a model with `metadata`. Tokenized and text examples longer
/// than `seq_len` tokens are cut to `seq_len`; a chat example that long is an error, because
/// cutting it would drop the assistant's reply. `tokenizer_json` is needed for the text and
/// chat formats.
pub fn read_examples(path: &Path, format: DataFormat, seq_len: usize, metadata: &Metadata, tokenizer_json: Option<&[u8]>) -> Result<Vec<Example>> {
    let vocab_size = metadata.vocab_size;
    let data_error = |message: String| TrainError::Data { path: path.to_path_buf(), message };
    let mut examples = match format {
        DataFormat::Tokenized => {
            let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
            parse_tokenized(&text, path)?
        }
        DataFormat::Text => {
            let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
            let json = tokenizer_json.ok_or_else(|| data_error("format = \"text\" needs a model with a tokenizer.json".into()))?;
            let tokenizer = tokenizers::Tokenizer::from_bytes(json).map_err(|e| data_error(format!("the model's tokenizer.json is invalid: {e}")))?;
            let encoding = tokenizer.encode(text.as_str(), false).map_err(|e| data_error(format!("tokenizing failed: {e}")))?;
            encoding.get_ids().chunks(seq_len).filter(|c| c.len() >= 2).map(|c| Example { ids: c.to_vec(), loss_mask: vec![true; c.len()] }).collect()
        }
        DataFormat::Chat => {
            let json = tokenizer_json.ok_or_else(|| data_error("format = \"chat\" needs a model with a tokenizer.json".into()))?;
            read_chat(path, seq_len, metadata, json)?
        }
    };
    for (i, example) in examples.iter_mut().enumerate() {
        if let Some(&bad) = example.ids.iter().find(|&&id| id >= vocab_size) {
            return Err(TrainError::Data { path: path.to_path_buf(), message: format!("example {} has token id {bad}, outside the model's vocabulary of {vocab_size}", i + 1) });
        }
        example.ids.truncate(seq_len);
        example.loss_mask.truncate(seq_len);
    }
    if examples.is_empty() {
        return Err(TrainError::Data { path: path.to_path_buf(), message: "no examples; the file is empty".into() });
    }
    Ok(examples)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizedLine {
    ids: Vec<u32>,
    loss_mask: Vec<serde_json::Value>,
}

/// Parses JSON lines `{"ids": [...], "loss_mask": [...]}`; blank lines are skipped.
pub fn parse_tokenized(text: &str, path: &Path) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| TrainError::Data { path: path.to_path_buf(), message: format!("line {number}: {message}") };
        let parsed: TokenizedLine = serde_json::from_str(line).map_err(|e| bad(format!("{e}; expected {{\"ids\": [...], \"loss_mask\": [...]}}")))?;
        if parsed.ids.len() != parsed.loss_mask.len() {
            return Err(bad(format!("ids has {} entries but loss_mask has {}; give one mask value per token", parsed.ids.len(), parsed.loss_mask.len())));
        }
        let loss_mask = parsed
            .loss_mask
            .iter()
            .map(|v| match v {
                serde_json::Value::Bool(b) => Ok(*b),
                serde_json::Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
                serde_json::Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
                other => Err(bad(format!("loss_mask value {other} is invalid; use 0/1 or false/true"))),
            })
            .collect::<Result<Vec<bool>>>()?;
        examples.push(Example { ids: parsed.ids, loss_mask });
    }
    Ok(examples)
}

/// Reads chat JSONL conversations, renders each with the model's chat template and tokenizes
/// it with the model's tokenizer. The loss mask is true on the assistant turns.
fn read_chat(path: &Path, seq_len: usize, metadata: &Metadata, tokenizer_json: &[u8]) -> Result<Vec<Example>> {
    let data_error = |message: String| TrainError::Data { path: path.to_path_buf(), message };
    let template = ChatTemplate::from_info(&metadata.tokenizer).map_err(|e| data_error(format!("format = \"chat\" needs the model's chat template: {e}")))?;
    let tokenizer = tinyllm::Tokenizer::from_json(tokenizer_json, metadata.tokenizer.clone()).map_err(|e| data_error(format!("the model's tokenizer.json is invalid: {e}")))?;
    let conversations = crate::data::read_conversations(path).map_err(|e| data_error(e.to_string()))?;
    let mut examples = Vec::with_capacity(conversations.len());
    for (index, conversation) in conversations.iter().enumerate() {
        let tokenized = template.tokenize(conversation, &tokenizer).map_err(|e| data_error(format!("conversation {}: {e}", index + 1)))?;
        if tokenized.len() > seq_len {
            return Err(data_error(format!(
                "conversation {} has {} tokens, more than data.seq_len = {seq_len}; raise data.seq_len so the assistant's reply is not cut off",
                index + 1,
                tokenized.len()
            )));
        }
        if !tokenized.loss_mask.iter().any(|&m| m) {
            return Err(data_error(format!("conversation {} has no assistant message, so it has no target tokens", index + 1)));
        }
        examples.push(Example { ids: tokenized.ids, loss_mask: tokenized.loss_mask });
    }
    Ok(examples)
}
