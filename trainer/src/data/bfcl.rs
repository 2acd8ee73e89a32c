//! Importer for the Berkeley Function Calling Leaderboard v4 (`BFCL_v4_<category>.json` and
//! `possible_answer/BFCL_v4_<category>.json`, one JSON object per line).
//!
//! A question line is `{"id", "question": [[{"role", "content"}, ...]], "function": [...]}`:
//! `question` is a list of turns, each a list of messages, and `function` lists the functions
//! in BFCL's own schema dialect (types `dict`, `float`, `tuple`, `any`, ...). An answer line is
//! `{"id", "ground_truth": [{"<function>": {"<parameter>": [alternative, ...]}}]}`: each
//! parameter lists every accepted value, and `""` among them means the parameter may be left
//! out. The `irrelevance` category has no answers: the right reply is no call.
//!
//! Each question becomes a conversation whose `tools` are the functions in JSON schema, and
//! whose assistant message calls the functions with the first accepted value of each
//! parameter (a parameter whose first value is `""` is left out). The `bfcl` field keeps the
//! original functions and all alternatives for the AST check of [`crate::eval::bfcl_match`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::chat::{describe, Conversation, FunctionCall, FunctionSpec, Message, Role, Tool};
use super::error::{DataError, FieldError, Result};

/// The categories this importer reads, in the order it reads them.
pub const CATEGORIES: &[&str] = &["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"];

/// The training target of an `irrelevance` question, whose right answer is no call.
pub const IRRELEVANT_REPLY: &str = "None of the available functions can answer this request.";

/// One expected call: the function name and the accepted values of each parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedCall {
    /// Function name.
    pub name: String,
    /// Accepted values of each parameter; `""` among them means the parameter may be left out.
    pub alternatives: BTreeMap<String, Vec<Value>>,
}

/// The accepted answers of one BFCL question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfclReference {
    /// BFCL category, such as `parallel_multiple`.
    pub category: String,
    /// The functions in BFCL's schema dialect, whose types the AST check needs.
    pub functions: Vec<Value>,
    /// Expected calls, in any order; empty for `irrelevance`, where the right answer is no call.
    pub possible_answer: Vec<ExpectedCall>,
}

/// Options of the BFCL importer.
#[derive(Debug, Clone)]
pub struct BfclOptions {
    /// Categories to read; see [`CATEGORIES`].
    pub categories: Vec<String>,
    /// Keep at most this many questions per category, in file order.
    pub limit_per_category: Option<usize>,
}

impl Default for BfclOptions {
    fn default() -> Self {
        BfclOptions { categories: CATEGORIES.iter().map(|c| c.to_string()).collect(), limit_per_category: None }
    }
}

/// The result of importing a BFCL directory.
#[derive(Debug, Clone)]
pub struct BfclImport {
    /// One conversation per question, categories in option order.
    pub conversations: Vec<Conversation>,
    /// Questions per category.
    pub counts: BTreeMap<String, usize>,
}

/// Converts a BFCL type name to JSON schema, as BFCL's OpenAI handler does: `dict` is
/// `object`, `float` is `number`, `tuple` is `array` and `any` is `string`.
fn json_schema_type(bfcl_type: &str) -> &str {
    match bfcl_type {
        "dict" => "object",
        "float" => "number",
        "tuple" => "array",
        "any" => "string",
        other => other,
    }
}

/// Converts a BFCL parameter schema to JSON schema, recursively.
pub fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                let converted = match (key.as_str(), value) {
                    ("type", Value::String(name)) => Value::from(json_schema_type(name)),
                    ("properties", Value::Object(properties)) => {
                        Value::Object(properties.iter().map(|(name, p)| (name.clone(), to_json_schema(p))).collect())
                    }
                    ("items", item) => to_json_schema(item),
                    _ => value.clone(),
                };
                out.insert(key.clone(), converted);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The first accepted value, or `None` when it is `""` (leave the parameter out).
fn first_alternative(alternatives: &[Value]) -> Option<&Value> {
    alternatives.first().filter(|v| v.as_str() != Some(""))
}

/// Picks the training value of a parameter from its alternatives. A `dict` value, or a list of
/// them, contains alternatives per key in turn, as BFCL's `dict_checker` reads them.
fn target_value(alternatives: &[Value], schema: &Value) -> Option<Value> {
    let first = first_alternative(alternatives)?;
    let schema_type = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let item_type = schema.pointer("/items/type").and_then(Value::as_str).unwrap_or("");
    match (schema_type, first) {
        ("dict", Value::Object(keys)) => Some(first_of_each(keys)),
        ("array", Value::Array(items)) if item_type == "dict" => {
            Some(Value::Array(items.iter().map(|item| item.as_object().map_or_else(|| item.clone(), first_of_each)).collect()))
        }
        _ => Some(first.clone()),
    }
}

fn first_of_each(keys: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (key, alternatives) in keys {
        match alternatives.as_array() {
            Some(list) => {
                if let Some(value) = first_alternative(list) {
                    out.insert(key.clone(), value.clone());
                }
            }
            None => {
                out.insert(key.clone(), alternatives.clone());
            }
        }
    }
    Value::Object(out)
}

fn find_function<'a>(functions: &'a [Value], name: &str) -> Option<&'a Value> {
    functions.iter().find(|f| f.get("name").and_then(Value::as_str) == Some(name))
}

/// The training call for `expected`: the first accepted value of each parameter the function
/// declares.
pub fn target_call(expected: &ExpectedCall, functions: &[Value]) -> FunctionCall {
    let properties = find_function(functions, &expected.name).and_then(|f| f.pointer("/parameters/properties"));
    let mut arguments = Map::new();
    for (parameter, alternatives) in &expected.alternatives {
        let Some(schema) = properties.and_then(|p| p.get(parameter)) else { continue };
        if let Some(value) = target_value(alternatives, schema) {
            arguments.insert(parameter.clone(), value);
        }
    }
    FunctionCall::new(expected.name.clone(), arguments)
}

fn function_spec(function: &Value) -> Result<FunctionSpec, FieldError> {
    let name = function.get("name").and_then(Value::as_str).ok_or_else(|| FieldError::new("name", "missing or not a string"))?;
    let description = function.get("description").and_then(Value::as_str).unwrap_or_default();
    let parameters = function.get("parameters").map(to_json_schema).unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    Ok(FunctionSpec { name: name.to_string(), description: description.to_string(), parameters })
}

fn parse_ground_truth(value: &Value) -> Result<Vec<ExpectedCall>, FieldError> {
    let calls = value
        .get("ground_truth")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("ground_truth", "missing or not a list of {\"function\": {\"parameter\": [values]}} objects"))?;
    let mut expected = Vec::with_capacity(calls.len());
    for (index, call) in calls.iter().enumerate() {
        let place = format!("ground_truth[{index}]");
        let object = call.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
            FieldError::new(place.as_str(), format!("expected an object with one function name as key, found {}", describe(call)))
        })?;
        let (name, parameters) = object.iter().next().expect("one entry");
        let parameters = parameters
            .as_object()
            .ok_or_else(|| FieldError::new(format!("{place}.{name}"), format!("expected an object of parameters, found {}", describe(parameters))))?;
        let mut alternatives = BTreeMap::new();
        for (parameter, values) in parameters {
            let list = values.as_array().ok_or_else(|| {
                FieldError::new(format!("{place}.{name}.{parameter}"), format!("expected a list of accepted values, found {}", describe(values)))
            })?;
            alternatives.insert(parameter.clone(), list.clone());
        }
        expected.push(ExpectedCall { name: name.clone(), alternatives });
    }
    Ok(expected)
}

fn read_json_lines(path: &Path) -> Result<Vec<(usize, Value)>> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    let mut values = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|error| DataError::Json { path: path.to_path_buf(), line: index + 1, message: error.to_string() })?;
        values.push((index + 1, value));
    }
    Ok(values)
}

fn question_to_conversation(value: &Value, category: &str, expected: Vec<ExpectedCall>) -> Result<Conversation, FieldError> {
    let id = value.get("id").and_then(Value::as_str).ok_or_else(|| FieldError::new("id", "missing or not a string"))?;
    let turns = value.get("question").and_then(Value::as_array).ok_or_else(|| FieldError::new("question", "missing or not a list of turns"))?;
    let mut messages = Vec::new();
    for (turn_index, turn) in turns.iter().enumerate() {
        let turn = turn.as_array().ok_or_else(|| FieldError::new(format!("question[{turn_index}]"), "expected a list of messages"))?;
        for (index, message) in turn.iter().enumerate() {
            let place = format!("question[{turn_index}][{index}]");
            let role = match message.get("role").and_then(Value::as_str) {
                Some("system") => Role::System,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                other => return Err(FieldError::new(format!("{place}.role"), format!("unsupported role {other:?}; expected system, user or assistant"))),
            };
            let content = message.get("content").and_then(Value::as_str).unwrap_or_default();
            messages.push(Message::new(role, content));
        }
    }
    let functions = value.get("function").and_then(Value::as_array).ok_or_else(|| FieldError::new("function", "missing or not a list of functions"))?;
    let mut tools = Vec::with_capacity(functions.len());
    for (index, function) in functions.iter().enumerate() {
        tools.push(Tool::from(function_spec(function).map_err(|e| e.within(&format!("function[{index}]")))?));
    }
    let reply = if expected.is_empty() {
        Message::new(Role::Assistant, IRRELEVANT_REPLY)
    } else {
        Message::assistant_calls(expected.iter().map(|call| target_call(call, functions)).collect())
    };
    messages.push(reply);
    Ok(Conversation {
        id: Some(id.to_string()),
        messages,
        tools,
        bfcl: Some(BfclReference { category: category.to_string(), functions: functions.clone(), possible_answer: expected }),
    })
}

/// Imports one category from `dir`: `BFCL_v4_<category>.json` and, except for
/// `irrelevance`, `possible_answer/BFCL_v4_<category>.json`, matched by `id`.
pub fn import_category(dir: &Path, category: &str, limit: Option<usize>) -> Result<Vec<Conversation>> {
    let questions_path = dir.join(format!("BFCL_v4_{category}.json"));
    let questions = read_json_lines(&questions_path)?;
    let mut answers: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    let answers_path: PathBuf = dir.join("possible_answer").join(format!("BFCL_v4_{category}.json"));
    let has_answers = category != "irrelevance";
    if has_answers {
        for (line, value) in read_json_lines(&answers_path)? {
            let id = value.get("id").and_then(Value::as_str).ok_or_else(|| DataError::Field {
                path: answers_path.clone(),
                line,
                error: FieldError::new("id", "missing or not a string"),
            })?;
            answers.insert(id.to_string(), (line, value));
        }
    }
    let mut conversations = Vec::new();
    for (line, question) in questions {
        if limit.is_some_and(|limit| conversations.len() >= limit) {
            break;
        }
        let id = question.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let expected = if has_answers {
            let (answer_line, answer) = answers.get(&id).ok_or_else(|| DataError::Field {
                path: questions_path.clone(),
                line,
                error: FieldError::new("id", format!("question {id:?} has no entry in {}", answers_path.display())),
            })?;
            parse_ground_truth(answer).map_err(|error| DataError::Field { path: answers_path.clone(), line: *answer_line, error })?
        } else {
            Vec::new()
        };
        let conversation =
            question_to_conversation(&question, category, expected).map_err(|error| DataError::Field { path: questions_path.clone(), line, error })?;
        conversations.push(conversation);
    }
    Ok(conversations)
}

/// Imports the categories of `options` from a BFCL directory.
pub fn import_dir(dir: &Path, options: &BfclOptions) -> Result<BfclImport> {
    let mut conversations = Vec::new();
    let mut counts = BTreeMap::new();
    for category in &options.categories {
        if !CATEGORIES.contains(&category.as_str()) {
            return Err(DataError::Invalid(format!("unknown BFCL category {category:?}; use one of {}", CATEGORIES.join(", "))));
        }
        let list = import_category(dir, category, options.limit_per_category)?;
        counts.insert(category.clone(), list.len());
        conversations.extend(list);
    }
    Ok(BfclImport { conversations, counts })
}
