//! Importer for the SNIPS NLU benchmark (`train_<Intent>_full.json` files of
//! sonos/nlu-benchmark, 2017-06-custom-intent-engines).
//!
//! Each utterance becomes a user message and an assistant call of the function named by its
//! intent in snake case (`GetWeather` becomes `get_weather`), with the slots as arguments
//! (slot name to slot text). The function schemas come from the data:
//!
//! - every slot seen for an intent is a parameter;
//! - its type is `integer` when every value seen parses as an integer, `number` when every
//!   value parses as a finite float, and `string` otherwise; values are converted to match;
//! - its description is the slot name in words with the three most frequent values;
//! - it is required when it occurs in at least [`REQUIRED_SHARE`] of the intent's utterances.
//!
//! An utterance that names the same slot twice (such as two time ranges) cannot be written
//! as one argument per slot and is skipped; the summary counts such utterances.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::chat::{Conversation, FunctionCall, FunctionSpec, Message, Role, Tool};
use super::error::{DataError, FieldError, Result};
use super::split::{fmix64, fnv1a64};

/// Share of an intent's utterances in which a slot must occur to become a required parameter.
pub const REQUIRED_SHARE: f64 = 0.95;

/// Number of example values quoted in a parameter's description.
const DESCRIPTION_EXAMPLES: usize = 3;

/// Which functions each SNIPS conversation offers as `tools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    /// Every intent's function, so the model must pick the intent.
    #[default]
    All,
    /// Only the function of the utterance's own intent.
    Intent,
    /// The utterance's own function and [`SnipsOptions::candidates`] − 1 others chosen by a
    /// hash of the utterance text, listed in intent order, so the model still picks the
    /// function while the prompt stays short.
    Candidates,
    /// No schemas in the prompt: the model learns the seven functions and their arguments
    /// from the calls themselves, as a model built for one fixed set of functions does. The
    /// prompt is then the utterance alone, about a tenth of the length with three schemas.
    None,
}

/// Options of the SNIPS importer.
#[derive(Debug, Clone, Default)]
pub struct SnipsOptions {
    /// Keep at most this many utterances per intent, in file order; the schemas still come
    /// from all utterances.
    pub limit_per_intent: Option<usize>,
    /// Functions offered in each conversation.
    pub tools: ToolChoice,
    /// Functions offered with [`ToolChoice::Candidates`], the right one included (at least 1).
    pub candidates: usize,
    /// What each parameter's description contains. Every conversation carries the schemas,
    /// so this sets much of the prompt length.
    pub slot_descriptions: SlotDescriptions,
}

/// The description of each function parameter (slot) in the SNIPS schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotDescriptions {
    /// The slot name in words and its three most frequent values.
    #[default]
    Examples,
    /// The slot name in words only.
    Names,
    /// No description: the parameter has only its name and type.
    None,
}

/// One utterance: text spans, some of them slot values.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Intent name as in the file, such as `GetWeather`.
    pub intent: String,
    /// Index within its intent's list.
    pub index: usize,
    /// Text spans in order, with the slot name of those that are slot values.
    pub spans: Vec<(String, Option<String>)>,
}

impl Utterance {
    /// The whole utterance, trimmed.
    pub fn text(&self) -> String {
        self.spans.iter().map(|(text, _)| text.as_str()).collect::<String>().trim().to_string()
    }
}

/// Facts about one intent, for the import summary.
#[derive(Debug, Clone, Serialize)]
pub struct IntentSummary {
    /// Function name.
    pub function: String,
    /// Utterances read.
    pub utterances: usize,
    /// Utterances kept as conversations.
    pub kept: usize,
    /// Utterances skipped because they name a slot twice.
    pub skipped_repeated_slot: usize,
    /// Occurrences of each slot.
    pub slot_counts: BTreeMap<String, usize>,
}

/// The result of importing a SNIPS directory.
#[derive(Debug, Clone)]
pub struct SnipsImport {
    /// One conversation per kept utterance, intents in file-name order.
    pub conversations: Vec<Conversation>,
    /// The derived function of each intent.
    pub functions: Vec<FunctionSpec>,
    /// Counts per intent name.
    pub intents: BTreeMap<String, IntentSummary>,
}

/// Converts an intent name such as `SearchScreeningEvent` to snake case (`search_screening_event`).
pub fn function_name(intent: &str) -> String {
    words(intent).join("_")
}

/// Splits a camel-case or snake-case name into lower-case words.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for ch in name.chars() {
        if ch == '_' || ch == '-' || ch == ' ' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if ch.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = ch.is_lowercase() || ch.is_ascii_digit();
        current.extend(ch.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Decodes a SNIPS file. Most files are UTF-8, but some write characters outside the Basic
/// Multilingual Plane as two UTF-8-encoded surrogates (CESU-8), which strict UTF-8 rejects;
/// those pairs are joined. Bytes that still do not decode are read as Latin-1.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_string();
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.push_str(text);
                break;
            }
            Err(error) => {
                let valid = error.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..valid]).unwrap_or_default());
                rest = &rest[valid..];
                if let Some((ch, used)) = decode_surrogate_pair(rest) {
                    out.push(ch);
                    rest = &rest[used..];
                } else {
                    out.push(char::from(rest[0]));
                    rest = &rest[1..];
                }
            }
        }
    }
    out
}

/// Decodes a high and a low surrogate, each as three UTF-8-style bytes, into one character.
fn decode_surrogate_pair(bytes: &[u8]) -> Option<(char, usize)> {
    let unit = |b: &[u8]| -> Option<u32> {
        if b.len() >= 3 && b[0] == 0xED && (b[1] & 0xC0) == 0x80 && (b[2] & 0xC0) == 0x80 {
            Some((u32::from(b[0] & 0x0F) << 12) | (u32::from(b[1] & 0x3F) << 6) | u32::from(b[2] & 0x3F))
        } else {
            None
        }
    };
    let high = unit(bytes)?;
    let low = unit(bytes.get(3..)?)?;
    if !(0xD800..0xDC00).contains(&high) || !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
    Some((char::from_u32(code)?, 6))
}

/// Reads the utterances of one SNIPS file: a JSON object from intent name to a list of
/// `{"data": [{"text": ..., "entity": ...}]}` entries.
pub fn read_file(path: &Path) -> Result<Vec<Utterance>> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    let text = decode_text(&bytes);
    let value: Value =
        serde_json::from_str(&text).map_err(|error| DataError::Json { path: path.to_path_buf(), line: error.line(), message: error.to_string() })?;
    parse_utterances(&value).map_err(|error| DataError::Field { path: path.to_path_buf(), line: 1, error })
}

fn parse_utterances(value: &Value) -> Result<Vec<Utterance>, FieldError> {
    let object = value
        .as_object()
        .ok_or_else(|| FieldError::new("", "expected an object from intent name to utterances, as in train_GetWeather_full.json"))?;
    let mut utterances = Vec::new();
    for (intent, list) in object {
        let list = list.as_array().ok_or_else(|| FieldError::new(intent.as_str(), "expected a list of utterances"))?;
        for (index, entry) in list.iter().enumerate() {
            let place = format!("{intent}[{index}]");
            let data = entry
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| FieldError::new(format!("{place}.data"), "missing or not a list of text spans"))?;
            let mut spans = Vec::with_capacity(data.len());
            for (span_index, span) in data.iter().enumerate() {
                let span_place = format!("{place}.data[{span_index}]");
                let text = span
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| FieldError::new(format!("{span_place}.text"), "missing or not a string"))?;
                let entity = match span.get("entity") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(name)) => Some(name.clone()),
                    Some(_) => return Err(FieldError::new(format!("{span_place}.entity"), "expected a slot name string")),
                };
                spans.push((text.to_string(), entity));
            }
            utterances.push(Utterance { intent: intent.clone(), index, spans });
        }
    }
    Ok(utterances)
}

/// What the data shows about one slot of one intent.
#[derive(Debug, Default)]
struct SlotStats {
    occurrences: usize,
    /// Distinct values with their counts and first-seen order.
    values: BTreeMap<String, (usize, usize)>,
}

/// JSON-schema type of a slot: `integer`, `number` or `string`.
fn slot_type(stats: &SlotStats) -> &'static str {
    if stats.values.keys().all(|v| v.parse::<i64>().is_ok()) {
        "integer"
    } else if stats.values.keys().all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)) {
        "number"
    } else {
        "string"
    }
}

fn typed_value(text: &str, schema_type: &str) -> Value {
    match schema_type {
        "integer" => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text)),
        "number" => text.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or_else(|| Value::from(text)),
        _ => Value::from(text),
    }
}

fn describe_slot(slot: &str, stats: &SlotStats, examples: usize) -> String {
    let mut name = words(slot).join(" ");
    if let Some(first) = name.get(..1) {
        name = first.to_uppercase() + &name[1..];
    }
    let mut values: Vec<(&String, &(usize, usize))> = stats.values.iter().collect();
    values.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    let quoted: Vec<String> = values.iter().take(examples).map(|(v, _)| format!("{v:?}")).collect();
    match quoted.len() {
        0 => format!("{name}."),
        1 => format!("{name}, for example {}.", quoted[0]),
        n => format!("{name}, for example {} or {}.", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// The slots of `utterance` as (name, text) pairs, or `None` when a slot occurs twice.
fn slots(utterance: &Utterance) -> Option<Vec<(String, String)>> {
    let mut slots: Vec<(String, String)> = Vec::new();
    for (text, entity) in &utterance.spans {
        if let Some(name) = entity {
            if slots.iter().any(|(seen, _)| seen == name) {
                return None;
            }
            slots.push((name.clone(), text.trim().to_string()));
        }
    }
    Some(slots)
}

/// Derives the function of one intent from its utterances.
fn derive_function(intent: &str, utterances: &[&Utterance], descriptions: SlotDescriptions) -> (FunctionSpec, BTreeMap<String, SlotStats>) {
    let mut stats: BTreeMap<String, SlotStats> = BTreeMap::new();
    let mut order = 0;
    for utterance in utterances {
        let mut seen_here: Vec<&str> = Vec::new();
        for (text, entity) in &utterance.spans {
            let Some(slot) = entity else { continue };
            let entry = stats.entry(slot.clone()).or_default();
            if !seen_here.contains(&slot.as_str()) {
                entry.occurrences += 1;
                seen_here.push(slot);
            }
            let value = entry.values.entry(text.trim().to_string()).or_insert((0, order));
            value.0 += 1;
            order += 1;
        }
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (slot, slot_stats) in &stats {
        let property = match descriptions {
            SlotDescriptions::Examples => json!({"type": slot_type(slot_stats), "description": describe_slot(slot, slot_stats, DESCRIPTION_EXAMPLES)}),
            SlotDescriptions::Names => json!({"type": slot_type(slot_stats), "description": describe_slot(slot, slot_stats, 0)}),
            SlotDescriptions::None => json!({"type": slot_type(slot_stats)}),
        };
        properties.insert(slot.clone(), property);
        if slot_stats.occurrences as f64 >= REQUIRED_SHARE * utterances.len() as f64 {
            required.push(Value::from(slot.clone()));
        }
    }
    let mut description = words(intent).join(" ");
    if let Some(first) = description.get(..1) {
        description = first.to_uppercase() + &description[1..];
    }
    let function = FunctionSpec {
        name: function_name(intent),
        description: format!("{description} (SNIPS intent {intent})."),
        parameters: json!({"type": "object", "properties": properties, "required": required}),
    };
    (function, stats)
}

/// Lists the `*.json` files of `dir` in name order.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Read { path: dir.to_path_buf(), source })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| DataError::Read { path: dir.to_path_buf(), source })?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Imports every `*.json` file of a SNIPS directory.
pub fn import_dir(dir: &Path, options: &SnipsOptions) -> Result<SnipsImport> {
    let files = json_files(dir)?;
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "no *.json files in {}; point --input at the directory with train_<Intent>_full.json files",
            dir.display()
        )));
    }
    let mut by_intent: Vec<(String, Vec<Utterance>)> = Vec::new();
    for file in &files {
        for utterance in read_file(file)? {
            match by_intent.iter_mut().find(|(intent, _)| *intent == utterance.intent) {
                Some((_, list)) => list.push(utterance),
                None => by_intent.push((utterance.intent.clone(), vec![utterance])),
            }
        }
    }
    Ok(build(&by_intent, options))
}

/// The function named `own` and `count` − 1 others of `functions`, in their order. The others
/// are those whose names hash lowest together with `text`, so each utterance gets its own
/// deterministic set.
fn candidate_tools(functions: &[FunctionSpec], own: &str, text: &str, count: usize) -> Vec<Tool> {
    let text_hash = fnv1a64(text.as_bytes());
    let mut others: Vec<(u64, &str)> = functions.iter().filter(|f| f.name != own).map(|f| (fmix64(text_hash ^ fnv1a64(f.name.as_bytes())), f.name.as_str())).collect();
    others.sort_unstable();
    others.truncate(count.saturating_sub(1));
    functions.iter().filter(|f| f.name == own || others.iter().any(|(_, name)| *name == f.name)).cloned().map(Tool::from).collect()
}

/// Builds conversations and schemas from utterances grouped by intent.
pub fn build(by_intent: &[(String, Vec<Utterance>)], options: &SnipsOptions) -> SnipsImport {
    let mut functions = Vec::new();
    let mut stats_by_intent = Vec::new();
    for (intent, utterances) in by_intent {
        let refs: Vec<&Utterance> = utterances.iter().collect();
        let (function, stats) = derive_function(intent, &refs, options.slot_descriptions);
        functions.push(function);
        stats_by_intent.push(stats);
    }
    let all_tools: Vec<Tool> = functions.iter().cloned().map(Tool::from).collect();

    let mut conversations = Vec::new();
    let mut intents = BTreeMap::new();
    for (((intent, utterances), function), stats) in by_intent.iter().zip(&functions).zip(&stats_by_intent) {
        let mut summary = IntentSummary {
            function: function.name.clone(),
            utterances: utterances.len(),
            kept: 0,
            skipped_repeated_slot: 0,
            slot_counts: stats.iter().map(|(slot, s)| (slot.clone(), s.occurrences)).collect(),
        };
        for utterance in utterances {
            if options.limit_per_intent.is_some_and(|limit| summary.kept >= limit) {
                break;
            }
            let Some(slots) = slots(utterance) else {
                summary.skipped_repeated_slot += 1;
                continue;
            };
            let mut arguments = Map::new();
            for (slot, text) in slots {
                let schema_type = stats.get(&slot).map_or("string", slot_type);
                arguments.insert(slot, typed_value(&text, schema_type));
            }
            let tools = match options.tools {
                ToolChoice::All => all_tools.clone(),
                ToolChoice::Intent => vec![Tool::from(function.clone())],
                ToolChoice::Candidates => candidate_tools(&functions, &function.name, &utterance.text(), options.candidates),
                ToolChoice::None => Vec::new(),
            };
            conversations.push(Conversation {
                id: Some(format!("snips/{intent}/{}", utterance.index)),
                messages: vec![
                    Message::new(Role::User, utterance.text()),
                    Message::assistant_calls(vec![FunctionCall::new(function.name.clone(), arguments)]),
                ],
                tools,
                bfcl: None,
            });
            summary.kept += 1;
        }
        intents.insert(intent.clone(), summary);
    }
    SnipsImport { conversations, functions, intents }
}
