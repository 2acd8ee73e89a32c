//! The chat format of the training data: one conversation per JSONL line, with the fields
//! that TRL and the OpenAI chat API use.
//!
//! ```json
//! {"messages": [{"role": "user", "content": "Weather in Paris?"},
//!               {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
//!                "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}],
//!  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "...",
//!             "parameters": {"type": "object", "properties": {...}, "required": [...]}}}]}
//! ```
//!
//! `arguments` may also be a JSON string holding an object, as the OpenAI API writes it; it
//! is read into an object. `content` may be `null` (read as empty) or a list of
//! `{"type": "text", "text": ...}` parts (joined). Optional extra fields: `id` (a name for
//! reports) and `bfcl` (the accepted answers of a BFCL question, for evaluation).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::bfcl::BfclReference;
use super::error::FieldError;

/// The author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
    /// The output of a function call.
    Tool,
}

impl Role {
    /// The role's name in the chat format.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    fn parse(name: &str) -> Option<Role> {
        match name {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

/// A function call made by the assistant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionCall {
    /// Name of the function.
    pub name: String,
    /// Arguments by parameter name.
    pub arguments: Map<String, Value>,
}

impl FunctionCall {
    /// Creates a call.
    pub fn new(name: impl Into<String>, arguments: Map<String, Value>) -> FunctionCall {
        FunctionCall { name: name.into(), arguments }
    }
}

/// One entry of an assistant message's `tool_calls`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Call id that a later `tool` message refers to, when the data has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call.
    pub function: FunctionCall,
}

impl From<FunctionCall> for ToolCall {
    fn from(function: FunctionCall) -> ToolCall {
        ToolCall { kind: "function".to_string(), id: None, function }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Text; empty for an assistant message that only calls functions.
    pub content: String,
    /// Function calls of an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the id of the call it responds to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a `tool` message: the function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// Creates a message with text only.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None, name: None }
    }

    /// Creates an assistant message that makes `calls` and has no text.
    pub fn assistant_calls(calls: Vec<FunctionCall>) -> Message {
        Message { tool_calls: calls.into_iter().map(ToolCall::from).collect(), ..Message::new(Role::Assistant, "") }
    }

    /// The function calls of this message, without the `tool_calls` wrappers.
    pub fn function_calls(&self) -> Vec<FunctionCall> {
        self.tool_calls.iter().map(|call| call.function.clone()).collect()
    }
}

/// A function the assistant may call, as a JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionSpec {
    /// Name of the function.
    pub name: String,
    /// What the function does.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
}

/// One entry of `tools`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionSpec,
}

impl From<FunctionSpec> for Tool {
    fn from(function: FunctionSpec) -> Tool {
        Tool { kind: "function".to_string(), function }
    }
}

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    /// A name for reports, such as `simple_python_12` or `snips/GetWeather/17`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The messages in order.
    pub messages: Vec<Message>,
    /// Functions the assistant may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Accepted answers of a BFCL question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfcl: Option<BfclReference>,
}

impl Conversation {
    /// The text of the user messages joined by newlines: the content that the train/dev
    /// split hashes.
    pub fn user_text(&self) -> String {
        let texts: Vec<&str> = self.messages.iter().filter(|m| m.role == Role::User).map(|m| m.content.as_str()).collect();
        texts.join("\n")
    }

    /// The conversation without its last message when that message is the assistant's, and
    /// that message: the prompt and the expected reply of an evaluation.
    pub fn split_last_assistant(&self) -> (Conversation, Option<&Message>) {
        match self.messages.last() {
            Some(last) if last.role == Role::Assistant => {
                let prompt = Conversation { messages: self.messages[..self.messages.len() - 1].to_vec(), ..self.clone() };
                (prompt, Some(last))
            }
            _ => (self.clone(), None),
        }
    }

    /// Reads a conversation from a parsed JSON line, naming the field of any problem.
    pub fn from_value(value: &Value) -> Result<Conversation, FieldError> {
        let object = expect_object(value, "")?;
        let id = match object.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            Some(other) => return Err(FieldError::new("id", format!("expected a string, found {}", describe(other)))),
        };
        let messages_value = object
            .get("messages")
            .ok_or_else(|| FieldError::new("messages", "missing; each line needs a \"messages\" list of {\"role\", \"content\"} objects"))?;
        let messages_list = messages_value
            .as_array()
            .ok_or_else(|| FieldError::new("messages", format!("expected a list of messages, found {}", describe(messages_value))))?;
        if messages_list.is_empty() {
            return Err(FieldError::new("messages", "the list is empty; a conversation needs at least one message"));
        }
        let mut messages = Vec::with_capacity(messages_list.len());
        for (index, message) in messages_list.iter().enumerate() {
            messages.push(parse_message(message).map_err(|e| e.within(&format!("messages[{index}]")))?);
        }
        let mut tools = Vec::new();
        match object.get("tools") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (index, tool) in list.iter().enumerate() {
                    tools.push(parse_tool(tool).map_err(|e| e.within(&format!("tools[{index}]")))?);
                }
            }
            Some(other) => return Err(FieldError::new("tools", format!("expected a list of tools, found {}", describe(other)))),
        }
        let bfcl = match object.get("bfcl") {
            None | Some(Value::Null) => None,
            Some(value) => Some(BfclReference::deserialize(value).map_err(|e| FieldError::new("bfcl", e.to_string()))?),
        };
        Ok(Conversation { id, messages, tools, bfcl })
    }
}

impl<'de> Deserialize<'de> for Conversation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Conversation::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// A short description of a JSON value's type and, for scalars, its text, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    let text = value.to_string();
    let text = if text.chars().count() > 60 { format!("{}...", text.chars().take(60).collect::<String>()) } else { text };
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => format!("the boolean {text}"),
        Value::Number(_) => format!("the number {text}"),
        Value::String(_) => format!("the string {text}"),
        Value::Array(_) => format!("a list {text}"),
        Value::Object(_) => format!("an object {text}"),
    }
}

fn expect_object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value.as_object().ok_or_else(|| FieldError::new(field, format!("expected a JSON object, found {}", describe(value))))
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(FieldError::new(field, format!("expected a string, found {}", describe(other)))),
    }
}

fn parse_content(value: Option<&Value>) -> Result<String, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (index, part) in parts.iter().enumerate() {
                let piece = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    FieldError::new(format!("content[{index}]"), format!("expected a {{\"type\": \"text\", \"text\": ...}} part, found {}", describe(part)))
                })?;
                text.push_str(piece);
            }
            Ok(text)
        }
        Some(other) => Err(FieldError::new("content", format!("expected a string, found {}", describe(other)))),
    }
}

fn parse_message(value: &Value) -> Result<Message, FieldError> {
    let object = expect_object(value, "")?;
    let role_value = object.get("role").ok_or_else(|| FieldError::new("role", "missing; use system, user, assistant or tool"))?;
    let role_name = role_value.as_str().ok_or_else(|| FieldError::new("role", format!("expected a string, found {}", describe(role_value))))?;
    let role = Role::parse(role_name)
        .ok_or_else(|| FieldError::new("role", format!("unknown role {role_name:?}; use system, user, assistant or tool")))?;
    let content = parse_content(object.get("content"))?;
    let mut tool_calls = Vec::new();
    match object.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if role != Role::Assistant && !list.is_empty() {
                return Err(FieldError::new("tool_calls", format!("only assistant messages make calls, but this message's role is {role_name}")));
            }
            for (index, call) in list.iter().enumerate() {
                tool_calls.push(parse_tool_call(call).map_err(|e| e.within(&format!("tool_calls[{index}]")))?);
            }
        }
        Some(other) => return Err(FieldError::new("tool_calls", format!("expected a list, found {}", describe(other)))),
    }
    Ok(Message { role, content, tool_calls, tool_call_id: optional_string(object, "tool_call_id")?, name: optional_string(object, "name")? })
}

fn parse_tool_call(value: &Value) -> Result<ToolCall, FieldError> {
    let object = expect_object(value, "")?;
    let kind = optional_string(object, "type")?.unwrap_or_else(|| "function".to_string());
    if kind != "function" {
        return Err(FieldError::new("type", format!("unsupported call type {kind:?}; only \"function\" calls are supported")));
    }
    let function_value = object
        .get("function")
        .ok_or_else(|| FieldError::new("function", "missing; write {\"function\": {\"name\": ..., \"arguments\": {...}}}"))?;
    let function = expect_object(function_value, "function")?;
    let name = optional_string(function, "name")
        .map_err(|e| e.within("function"))?
        .ok_or_else(|| FieldError::new("function.name", "missing; every call needs the function's name"))?;
    let arguments = parse_arguments(function.get("arguments")).map_err(|e| e.within("function"))?;
    Ok(ToolCall { kind, id: optional_string(object, "id")?, function: FunctionCall { name, arguments } })
}

/// Reads `arguments` given as an object or as a string holding a JSON object.
fn parse_arguments(value: Option<&Value>) -> Result<Map<String, Value>, FieldError> {
    const FIX: &str = "write the arguments as a JSON object such as {\"city\": \"Paris\"}, or a string holding one";
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(arguments)) => Ok(arguments.clone()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(arguments)) => Ok(arguments),
            Ok(other) => Err(FieldError::new("arguments", format!("the string contains {}, not an object; {FIX}", describe(&other)))),
            Err(error) => Err(FieldError::new("arguments", format!("the string {text:?} is not valid JSON ({error}); {FIX}"))),
        },
        Some(other) => Err(FieldError::new("arguments", format!("expected an object, found {}; {FIX}", describe(other)))),
    }
}

fn parse_tool(value: &Value) -> Result<Tool, FieldError> {
    let object = expect_object(value, "")?;
    let kind = optional_string(object, "type")?.unwrap_or_else(|| "function".to_string());
    if kind != "function" {
        return Err(FieldError::new("type", format!("unsupported tool type {kind:?}; only \"function\" tools are supported")));
    }
    let function_value = object
        .get("function")
        .ok_or_else(|| FieldError::new("function", "missing; write {\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}}"))?;
    let function = expect_object(function_value, "function")?;
    let name = optional_string(function, "name")
        .map_err(|e| e.within("function"))?
        .ok_or_else(|| FieldError::new("function.name", "missing; every tool needs the function's name"))?;
    let description = optional_string(function, "description").map_err(|e| e.within("function"))?.unwrap_or_default();
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(Value::Object(schema)) => Value::Object(schema.clone()),
        Some(other) => {
            return Err(FieldError::new("function.parameters", format!("expected a JSON schema object, found {}", describe(other))));
        }
    };
    Ok(Tool { kind, function: FunctionSpec { name, description, parameters } })
}
