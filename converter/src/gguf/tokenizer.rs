//! Conversion of GGUF tokenizer metadata to a Hugging Face `tokenizer.json`.
//!
//! GGUF stores a byte-level BPE tokenizer (`tokenizer.ggml.model = "gpt2"`) as a token list,
//! a token type list, a merge list and a pre-tokenizer name (`tokenizer.ggml.pre`). The name
//! selects split rules that live in llama.cpp's source (src/llama-vocab.cpp), not in the file.
//! This module maps the supported names to the equivalent `tokenizers` pipeline.

use serde_json::{json, Map, Value};

use super::error::GgufError;
use super::reader::GgufFile;

const KEY_MODEL: &str = "tokenizer.ggml.model";
const KEY_PRE: &str = "tokenizer.ggml.pre";
const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
const KEY_TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
const KEY_MERGES: &str = "tokenizer.ggml.merges";
const KEY_BOS: &str = "tokenizer.ggml.bos_token_id";
const KEY_EOS: &str = "tokenizer.ggml.eos_token_id";
const KEY_EOT: &str = "tokenizer.ggml.eot_token_id";
const KEY_PAD: &str = "tokenizer.ggml.padding_token_id";
const KEY_UNK: &str = "tokenizer.ggml.unknown_token_id";
const KEY_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const KEY_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const KEY_CHAT_TEMPLATE: &str = "tokenizer.chat_template";

/// llama.cpp token type CONTROL: special tokens such as `<|im_start|>`.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// llama.cpp token type USER_DEFINED: added tokens that are not special, such as `<think>`.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Qwen2's split pattern: like Llama 3's, but each digit is a separate piece.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split pattern: digits in groups of up to three.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Patterns that llama.cpp applies one after another for `tokenizer.ggml.pre = "default"`.
const DEFAULT_PATTERNS: [&str; 4] = [
    r"[\p{P}\$\+<=>\^~\|]+",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];

/// Values of `tokenizer.ggml.pre` that [`tokenizer_json_from_gguf`] accepts.
const SUPPORTED_PRE: &str = "qwen2, deepseek-r1-qwen, llama-bpe, llama3, llama-v3, smollm, \
                             starcoder, gpt-2, default";

/// Special token ids, BOS/EOS flags and chat template from a GGUF file's tokenizer metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GgufChatInfo {
    /// Jinja chat template (`tokenizer.chat_template`).
    pub chat_template: Option<String>,
    /// Beginning-of-sequence token id.
    pub bos: Option<u32>,
    /// End-of-sequence token id.
    pub eos: Option<u32>,
    /// End-of-turn token id, when the model has one apart from EOS.
    pub eot: Option<u32>,
    /// Padding token id.
    pub pad: Option<u32>,
    /// Unknown-token id.
    pub unk: Option<u32>,
    /// Text of the BOS token, for chat templates that print `bos_token`.
    pub bos_token: Option<String>,
    /// Text of the EOS token, for chat templates that print `eos_token`.
    pub eos_token: Option<String>,
    /// Whether encoding prepends BOS.
    pub add_bos: bool,
    /// Whether encoding appends EOS.
    pub add_eos: bool,
}

/// Reads the special tokens, BOS/EOS flags and chat template.
///
/// When `tokenizer.ggml.add_bos_token` or `add_eos_token` is absent, the flag takes llama.cpp's
/// default for the tokenizer: BOS is added for SentencePiece (`llama`) and WordPiece (`bert`)
/// models and for the Llama 3 pre-tokenizers, and EOS is added for `t5` models.
/// Every token id must index `tokenizer.ggml.tokens` when that list is present.
pub fn special_tokens(file: &GgufFile) -> Result<GgufChatInfo, GgufError> {
    let tokens = match file.get(KEY_TOKENS) {
        Some(_) => Some(file.get_str_array(KEY_TOKENS)?),
        None => None,
    };
    let token_id = |key: &str| -> Result<Option<u32>, GgufError> {
        if file.get(key).is_none() {
            return Ok(None);
        }
        let id = file.get_u32(key)?;
        if let Some(tokens) = tokens {
            if id as usize >= tokens.len() {
                return Err(GgufError::InvalidTokenizer {
                    key: key.to_string(),
                    reason: format!(
                        "token id {id} is out of range for a vocabulary of {} tokens",
                        tokens.len()
                    ),
                });
            }
        }
        Ok(Some(id))
    };
    let optional_bool = |key: &str| -> Result<Option<bool>, GgufError> {
        match file.get(key) {
            Some(_) => file.get_bool(key).map(Some),
            None => Ok(None),
        }
    };

    let model = match file.get(KEY_MODEL) {
        Some(_) => Some(file.get_str(KEY_MODEL)?),
        None => None,
    };
    let pre = match file.get(KEY_PRE) {
        Some(_) => Some(file.get_str(KEY_PRE)?),
        None => None,
    };
    let (default_add_bos, default_add_eos) = match model {
        Some("llama") | Some("bert") => (true, false),
        Some("t5") => (false, true),
        Some("gpt2") => (pre.is_some_and(adds_bos_by_default), false),
        _ => (false, false),
    };

    let bos = token_id(KEY_BOS)?;
    let eos = token_id(KEY_EOS)?;
    let token_text = |id: Option<u32>| {
        let tokens = tokens?;
        tokens.get(usize::try_from(id?).ok()?).cloned()
    };
    let chat_template = match file.get(KEY_CHAT_TEMPLATE) {
        Some(_) => Some(file.get_str(KEY_CHAT_TEMPLATE)?.to_string()),
        None => None,
    };

    Ok(GgufChatInfo {
        chat_template,
        bos,
        eos,
        eot: token_id(KEY_EOT)?,
        pad: token_id(KEY_PAD)?,
        unk: token_id(KEY_UNK)?,
        bos_token: token_text(bos),
        eos_token: token_text(eos),
        add_bos: optional_bool(KEY_ADD_BOS)?.unwrap_or(default_add_bos),
        add_eos: optional_bool(KEY_ADD_EOS)?.unwrap_or(default_add_eos),
    })
}

/// Returns true for the pre-tokenizer names for which llama.cpp adds BOS when the file does not
/// set `tokenizer.ggml.add_bos_token`.
fn adds_bos_by_default(pre: &str) -> bool {
    matches!(pre, "llama-bpe" | "llama3" | "llama-v3")
}

/// The `tokenizers` pipeline pieces that a `tokenizer.ggml.pre` value selects.
struct PreTokenizerSpec {
    normalizer: Value,
    pre_tokenizer: Value,
    /// Whether a word that is already in the vocabulary skips the merges (Llama 3 behavior).
    ignore_merges: bool,
}

/// Builds a `ByteLevel` step. With `use_regex`, it first splits with GPT-2's pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn byte_level(use_regex: bool) -> Value {
    json!({
        "type": "ByteLevel",
        "add_prefix_space": false,
        "trim_offsets": false,
        "use_regex": use_regex,
    })
}

fn split_isolated(pattern: &str) -> Value {
    json!({
        "type": "Split",
        "pattern": { "Regex": pattern },
        "behavior": "Isolated",
        "invert": false,
    })
}

fn pre_tokenizer_spec(pre: &str) -> Result<PreTokenizerSpec, GgufError> {
    let sequence = |pieces: Vec<Value>| json!({ "type": "Sequence", "pretokenizers": pieces });
    Ok(match pre {
        // Qwen's own tokenizer.json applies NFC before splitting, so this does too.
        "qwen2" | "deepseek-r1-qwen" => PreTokenizerSpec {
            normalizer: json!({ "type": "NFC" }),
            pre_tokenizer: sequence(vec![split_isolated(QWEN2_PATTERN), byte_level(false)]),
            ignore_merges: false,
        },
        "llama-bpe" | "llama3" | "llama-v3" => PreTokenizerSpec {
            normalizer: Value::Null,
            pre_tokenizer: sequence(vec![split_isolated(LLAMA3_PATTERN), byte_level(false)]),
            ignore_merges: true,
        },
        // Every digit becomes its own piece, then GPT-2's pattern splits the rest.
        "smollm" | "starcoder" => PreTokenizerSpec {
            normalizer: Value::Null,
            pre_tokenizer: sequence(vec![
                json!({ "type": "Digits", "individual_digits": true }),
                byte_level(true),
            ]),
            ignore_merges: false,
        },
        "gpt-2" => PreTokenizerSpec {
            normalizer: Value::Null,
            pre_tokenizer: byte_level(true),
            ignore_merges: false,
        },
        "default" => {
            let mut pieces: Vec<Value> =
                DEFAULT_PATTERNS.iter().map(|p| split_isolated(p)).collect();
            pieces.push(byte_level(false));
            PreTokenizerSpec {
                normalizer: Value::Null,
                pre_tokenizer: sequence(pieces),
                ignore_merges: false,
            }
        }
        other => {
            return Err(GgufError::UnsupportedPreTokenizer {
                pre: other.to_string(),
                supported: SUPPORTED_PRE,
            })
        }
    })
}

/// Splits a GGUF merge rule `"left right"` at the first space after the first byte, as
/// llama.cpp does, so a left part that starts with a space is kept whole.
fn split_merge(rule: &str) -> Option<(&str, &str)> {
    let (space, _) = rule.char_indices().find(|&(i, c)| i >= 1 && c == ' ')?;
    let left = rule.get(..space)?;
    let right = rule.get(space + 1..)?;
    Some((left, right))
}

/// Builds the text of a Hugging Face `tokenizer.json` equivalent to the GGUF tokenizer.
///
/// Supports byte-level BPE (`tokenizer.ggml.model = "gpt2"`) with the pre-tokenizers listed in
/// [`GgufError::UnsupportedPreTokenizer`]. A missing `tokenizer.ggml.pre` means `default`, as in
/// llama.cpp. Tokens of type CONTROL (3) become special added tokens and USER_DEFINED (4) ones
/// become non-special added tokens. A post-processor adds BOS and EOS as [`special_tokens`]
/// reports.
///
/// Differences from llama.cpp: the `tokenizers` library always splits added tokens out of the
/// input, while llama.cpp matches CONTROL tokens only when asked to parse special tokens. An
/// empty token string becomes `[EMPTY_<id>]` and, for a string listed twice, the text maps to
/// the last id, as in llama.cpp.
pub fn tokenizer_json_from_gguf(file: &GgufFile) -> Result<String, GgufError> {
    let model = file.get_str(KEY_MODEL)?;
    if model != "gpt2" {
        return Err(GgufError::UnsupportedTokenizerModel {
            model: model.to_string(),
        });
    }
    let pre = match file.get(KEY_PRE) {
        Some(_) => file.get_str(KEY_PRE)?,
        None => "default",
    };
    let spec = pre_tokenizer_spec(pre)?;

    let tokens = file.get_str_array(KEY_TOKENS)?;
    if u32::try_from(tokens.len()).is_err() {
        return Err(GgufError::InvalidTokenizer {
            key: KEY_TOKENS.to_string(),
            reason: format!("{} tokens do not fit 32-bit token ids", tokens.len()),
        });
    }
    let token_types = match file.get(KEY_TOKEN_TYPE) {
        Some(_) => file.get_i64_array(KEY_TOKEN_TYPE)?,
        None => Vec::new(),
    };
    if !token_types.is_empty() && token_types.len() != tokens.len() {
        return Err(GgufError::InvalidTokenizer {
            key: KEY_TOKEN_TYPE.to_string(),
            reason: format!(
                "{} token types for {} tokens; the lists must have the same length",
                token_types.len(),
                tokens.len()
            ),
        });
    }
    let info = special_tokens(file)?;

    let mut vocab = Map::with_capacity(tokens.len());
    let mut added_tokens = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        let text = if token.is_empty() {
            format!("[EMPTY_{id}]")
        } else {
            token.clone()
        };
        let token_type = token_types.get(id).copied();
        if matches!(
            token_type,
            Some(TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED)
        ) {
            added_tokens.push(json!({
                "id": id,
                "content": text,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": token_type == Some(TOKEN_TYPE_CONTROL),
            }));
        }
        vocab.insert(text, json!(id));
    }

    let rules = file.get_str_array(KEY_MERGES)?;
    let mut merges = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        let (left, right) = split_merge(rule).ok_or_else(|| GgufError::InvalidTokenizer {
            key: KEY_MERGES.to_string(),
            reason: format!("merge {index} is {rule:?}, which has no space between two parts"),
        })?;
        merges.push(json!([left, right]));
    }

    let document = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": spec.normalizer,
        "pre_tokenizer": spec.pre_tokenizer,
        "post_processor": post_processor(&info, tokens)?,
        "decoder": byte_level(false),
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": spec.ignore_merges,
            "vocab": vocab,
            "merges": merges,
        },
    });
    Ok(serde_json::to_string(&document)?)
}

/// Builds a post-processor that keeps byte-level offsets and adds BOS and EOS when the flags
/// ask for them.
fn post_processor(info: &GgufChatInfo, tokens: &[String]) -> Result<Value, GgufError> {
    let offsets = byte_level(false);
    let bos = if info.add_bos {
        Some(special_text(KEY_BOS, info.bos, tokens)?)
    } else {
        None
    };
    let eos = if info.add_eos {
        Some(special_text(KEY_EOS, info.eos, tokens)?)
    } else {
        None
    };
    if bos.is_none() && eos.is_none() {
        return Ok(offsets);
    }

    let mut special = Map::new();
    for (text, id) in bos.iter().chain(eos.iter()) {
        special.insert(
            text.clone(),
            json!({ "id": text, "ids": [id], "tokens": [text] }),
        );
    }

    let template = |sequence: &str, type_id: u32| -> Vec<Value> {
        let special_piece = |(text, _): &(String, u32)| json!({ "SpecialToken": { "id": text, "type_id": type_id } });
        let sequence_piece = json!({ "Sequence": { "id": sequence, "type_id": type_id } });
        bos.as_ref()
            .map(special_piece)
            .into_iter()
            .chain(Some(sequence_piece))
            .chain(eos.as_ref().map(special_piece))
            .collect()
    };
    let single = template("A", 0);
    let mut pair = template("A", 0);
    pair.extend(template("B", 1));

    Ok(json!({
        "type": "Sequence",
        "processors": [
            offsets,
            {
                "type": "TemplateProcessing",
                "single": single,
                "pair": pair,
                "special_tokens": special,
            },
        ],
    }))
}

/// Returns the text and id of the special token stored under `key`, which an add flag needs.
fn special_text(key: &str, id: Option<u32>, tokens: &[String]) -> Result<(String, u32), GgufError> {
    let missing = || GgufError::InvalidTokenizer {
        key: key.to_string(),
        reason: "the token must be set and in the vocabulary because the matching \
                 add_*_token flag is true"
            .to_string(),
    };
    let id = id.ok_or_else(missing)?;
    let text = usize::try_from(id)
        .ok()
        .and_then(|i| tokens.get(i))
        .ok_or_else(missing)?;
    Ok((text.clone(), id))
}
