//! Parsing a generated reply into function calls.
//!
//! A reply may hold `<tool_call>` blocks (the Hermes convention of Qwen2.5 and Qwen3), each
//! with one call object or a list of them, or, without tags, a bare JSON call object or list
//! of calls somewhere in the text. Text around the calls is ignored. A call object is
//! `{"name": ..., "arguments": {...}}`; `arguments` may be a string holding a JSON object,
//! `parameters` is read as `arguments`, and the OpenAI form `{"function": {...}}` is accepted.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::data::FunctionCall;

const OPEN_TAG: &str = "<tool_call>";
const CLOSE_TAG: &str = "</tool_call>";

/// The calls found in a reply and whether their JSON was valid.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ParsedReply {
    /// Calls that parsed, in order.
    pub calls: Vec<FunctionCall>,
    /// Number of call candidates found: `<tool_call>` blocks, or 1 for a bare JSON value.
    pub candidates: usize,
    /// Why candidates were rejected, one message each.
    pub errors: Vec<String>,
}

impl ParsedReply {
    /// Whether the reply contains at least one call candidate and every candidate is valid JSON
    /// of the call shape.
    pub fn valid_json(&self) -> bool {
        self.candidates > 0 && self.errors.is_empty()
    }
}

/// Reads one call object, or `None` with the reason.
fn call_from_value(value: &Value) -> Result<FunctionCall, String> {
    let object = value.as_object().ok_or_else(|| format!("expected a call object, found {value}"))?;
    if let Some(function) = object.get("function").filter(|f| f.is_object()) {
        return call_from_value(function);
    }
    let name = object.get("name").and_then(Value::as_str).ok_or_else(|| "the call has no \"name\" string".to_string())?;
    let arguments = match object.get("arguments").or_else(|| object.get("parameters")) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(arguments)) => arguments,
            _ => return Err(format!("the arguments of {name} are a string that does not hold a JSON object")),
        },
        Some(other) => return Err(format!("the arguments of {name} are {other}, not an object")),
    };
    Ok(FunctionCall::new(name, arguments))
}

/// Reads a call object or a list of them.
fn calls_from_value(value: &Value) -> Result<Vec<FunctionCall>, String> {
    match value {
        Value::Array(items) => items.iter().map(call_from_value).collect(),
        other => call_from_value(other).map(|call| vec![call]),
    }
}

/// Parses the first JSON value at the start of `text` and ignores what follows it.
fn leading_json(text: &str) -> Result<Value, serde_json::Error> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match stream.next() {
        Some(result) => result,
        None => serde_json::from_str(text),
    }
}

/// Finds the first bare JSON call object or list of calls in `text`.
fn find_bare_calls(text: &str) -> Option<Vec<FunctionCall>> {
    for (start, ch) in text.char_indices() {
        if ch != '{' && ch != '[' {
            continue;
        }
        if let Ok(value) = leading_json(&text[start..]) {
            if let Ok(calls) = calls_from_value(&value) {
                if !calls.is_empty() {
                    return Some(calls);
                }
            }
        }
    }
    None
}

/// Parses a generated reply into calls.
pub fn parse_reply(text: &str) -> ParsedReply {
    let mut reply = ParsedReply::default();
    let mut rest = text;
    while let Some(open) = rest.find(OPEN_TAG) {
        let after = &rest[open + OPEN_TAG.len()..];
        let (body, next) = match after.find(CLOSE_TAG) {
            Some(close) => (&after[..close], &after[close + CLOSE_TAG.len()..]),
            None => (after, ""),
        };
        reply.candidates += 1;
        match leading_json(body.trim()).map_err(|e| format!("invalid JSON in <tool_call> block {}: {e}", reply.candidates)) {
            Ok(value) => match calls_from_value(&value) {
                Ok(calls) => reply.calls.extend(calls),
                Err(error) => reply.errors.push(error),
            },
            Err(error) => reply.errors.push(error),
        }
        rest = next;
    }
    if reply.candidates == 0 {
        if let Some(calls) = find_bare_calls(text) {
            reply.candidates = 1;
            reply.calls = calls;
        }
    }
    reply
}
