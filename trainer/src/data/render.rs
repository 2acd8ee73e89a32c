//! Rendering conversations with the tokenizer's chat template, and tokenizing them with a
//! per-token loss mask that is true exactly on the assistant's tokens.
//!
//! The template sees what transformers' `apply_chat_template` passes: `messages`, `tools`,
//! `add_generation_prompt`, `bos_token`, `eos_token` and `raise_exception`, with trim_blocks,
//! lstrip_blocks and Python string methods, as the runtime renders chat prompts.
//!
//! Templates that know nothing of tools (SmolLM2's) get the Hermes convention that Qwen2.5
//! and Qwen3 use instead: the tools go into the system message as a JSON list with a short
//! instruction, each assistant call is written as
//! `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` in the assistant content,
//! and a `tool` message becomes a user message wrapped in `<tool_response>` tags. Templates
//! that handle `tools` and `tool_calls` themselves (Qwen2.5, Qwen3, Llama 3.1) get them as
//! they are.

use std::ops::Range;
use std::path::Path;

use serde_json::Value;
use tinyllm::format::TokenizerInfo;
use tinyllm::Tokenizer;

use super::chat::{Conversation, FunctionCall, Message, Role, Tool};
use super::error::{DataError, Result};

/// Instruction put before the tool list when the template does not handle tools.
pub const TOOLS_INSTRUCTION: &str = "You may call one or more functions to assist with the user query.\n\n\
You are provided with function signatures within <tools></tools> XML tags:";

/// Instruction put after the tool list when the template does not handle tools.
pub const TOOL_CALL_INSTRUCTION: &str = "For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";

/// How tools and tool calls reach the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolStyle {
    /// [`ToolStyle::Template`] when the template mentions both `tools` and `tool_calls`,
    /// [`ToolStyle::SystemPrompt`] otherwise.
    #[default]
    Auto,
    /// Pass `tools` and `tool_calls` to the template.
    Template,
    /// Write tools into the system message and calls into the assistant text.
    SystemPrompt,
}

/// A chat template with the special tokens it prints.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
    end_of_turn: String,
    tools_in_template: bool,
}

/// Token ids of one conversation and the loss mask over them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenizedExample {
    /// Token ids of the whole rendered conversation.
    pub ids: Vec<u32>,
    /// True on the tokens the assistant writes: its content, calls and end-of-turn token,
    /// but not the template's assistant header.
    pub loss_mask: Vec<bool>,
}

impl TokenizedExample {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids under the loss mask, in order.
    pub fn masked_ids(&self) -> Vec<u32> {
        self.ids.iter().zip(&self.loss_mask).filter(|(_, &m)| m).map(|(&id, _)| id).collect()
    }
}

fn template_error(error: minijinja::Error) -> DataError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    DataError::Template(message)
}

/// Formats `value` as Python's `json.dumps(value, ensure_ascii=False)` does (separators `", "`
/// and `": "`), or with `indent` spaces per level as `json.dumps(value, indent=n)` does. This is
/// the `tojson` filter of transformers' chat templates, which the Qwen templates print calls
/// and tools with.
pub fn python_json(value: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_python_json(value, indent, 0, &mut out);
    out
}

fn write_python_json(value: &Value, indent: Option<usize>, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (index, (key, item)) in map.iter().enumerate() {
                if index > 0 {
                    out.push_str(separator);
                }
                newline(out, depth + 1);
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push_str(": ");
                write_python_json(item, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Formats a call as the Hermes convention writes it inside `<tool_call>` tags.
pub fn call_json(call: &FunctionCall) -> String {
    let value = serde_json::json!({"name": call.name, "arguments": call.arguments});
    // `json!` sorts keys, but the convention puts "name" first.
    format!("{{\"name\": {}, \"arguments\": {}}}", python_json(&value["name"], None), python_json(&value["arguments"], None))
}

/// Writes `calls` as `<tool_call>` blocks separated by newlines.
pub fn format_tool_calls(calls: &[FunctionCall]) -> String {
    calls.iter().map(|call| format!("<tool_call>\n{}\n</tool_call>", call_json(call))).collect::<Vec<_>>().join("\n")
}

/// Formats a tool as OpenAI writes it: `{"type": "function", "function": {"name", "description",
/// "parameters"}}` in that key order. Keys inside the parameter schema come out sorted.
pub fn tool_json(tool: &Tool) -> String {
    let function = &tool.function;
    format!(
        "{{\"type\": {}, \"function\": {{\"name\": {}, \"description\": {}, \"parameters\": {}}}}}",
        Value::from(tool.kind.as_str()),
        Value::from(function.name.as_str()),
        Value::from(function.description.as_str()),
        python_json(&function.parameters, None)
    )
}

/// Writes the system-message block that lists `tools` as one JSON list.
pub fn format_tools_block(tools: &[Tool]) -> String {
    let list = tools.iter().map(tool_json).collect::<Vec<_>>().join(", ");
    format!("{TOOLS_INSTRUCTION}\n<tools>\n[{list}]\n</tools>\n\n{TOOL_CALL_INSTRUCTION}")
}

/// Reads a special token from `tokenizer_config.json`: a string or `{"content": ...}`.
fn config_token(config: &Value, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => object.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Reads the chat facts of a Hugging Face `tokenizer_config.json`: the chat template (the
/// `default` one when the file lists several), BOS and EOS texts and `add_bos_token`.
pub fn tokenizer_info_from_config(path: &Path) -> Result<TokenizerInfo> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    let config: Value = serde_json::from_str(&text).map_err(|error| DataError::Json { path: path.to_path_buf(), line: error.line(), message: error.to_string() })?;
    let chat_template = match config.get("chat_template") {
        Some(Value::String(template)) => Some(template.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|entry| entry.get("template"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    };
    Ok(TokenizerInfo {
        chat_template,
        bos_token: config_token(&config, "bos_token"),
        eos_token: config_token(&config, "eos_token"),
        add_bos_token: config.get("add_bos_token").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Loads a Hugging Face tokenizer directory: `tokenizer.json` and `tokenizer_config.json`.
pub fn load_tokenizer_dir(dir: &Path) -> Result<(Tokenizer, ChatTemplate)> {
    let info = tokenizer_info_from_config(&dir.join("tokenizer_config.json"))?;
    let json_path = dir.join("tokenizer.json");
    let json = std::fs::read(&json_path).map_err(|source| DataError::Read { path: json_path, source })?;
    let template = ChatTemplate::from_info(&info)?;
    let tokenizer = Tokenizer::from_json(&json, info)?;
    Ok((tokenizer, template))
}

impl ChatTemplate {
    /// Creates a template. The end-of-turn marker, which closes each assistant turn and the
    /// loss mask, is the EOS token's text.
    pub fn new(source: impl Into<String>, bos_token: impl Into<String>, eos_token: impl Into<String>) -> Result<ChatTemplate> {
        let source = source.into();
        let eos_token = eos_token.into();
        if eos_token.is_empty() {
            return Err(DataError::Template("the tokenizer has no EOS token text, which ends each assistant turn; set eos_token in tokenizer_config.json".into()));
        }
        let tools_in_template = source.contains("tools") && source.contains("tool_calls");
        Ok(ChatTemplate { source, bos_token: bos_token.into(), end_of_turn: eos_token.clone(), eos_token, tools_in_template })
    }

    /// Creates the template of a tokenizer's chat facts.
    pub fn from_info(info: &TokenizerInfo) -> Result<ChatTemplate> {
        let source = info
            .chat_template
            .clone()
            .ok_or_else(|| DataError::Template("the tokenizer has no chat template; use an instruct model's tokenizer".into()))?;
        ChatTemplate::new(source, info.bos_token.clone().unwrap_or_default(), info.eos_token.clone().unwrap_or_default())
    }

    /// Creates the template stored in a `.tllm` model.
    pub fn from_model(model: &tinyllm::Model<'_>) -> Result<ChatTemplate> {
        ChatTemplate::from_info(&model.metadata().tokenizer)
    }

    /// Chooses how tools reach the template.
    pub fn with_tool_style(mut self, style: ToolStyle) -> ChatTemplate {
        self.tools_in_template = match style {
            ToolStyle::Auto => self.source.contains("tools") && self.source.contains("tool_calls"),
            ToolStyle::Template => true,
            ToolStyle::SystemPrompt => false,
        };
        self
    }

    /// Sets the text that ends an assistant turn (default: the EOS token's text).
    pub fn with_end_of_turn(mut self, marker: impl Into<String>) -> ChatTemplate {
        self.end_of_turn = marker.into();
        self
    }

    /// Whether tools and calls go to the template as they are.
    pub fn handles_tools(&self) -> bool {
        self.tools_in_template
    }

    /// The text that ends each assistant turn.
    pub fn end_of_turn(&self) -> &str {
        &self.end_of_turn
    }

    /// Returns the messages and tools passed to the template: with [`ToolStyle::SystemPrompt`], tools move
    /// into the system message and calls into the assistant text.
    pub fn prepare(&self, conversation: &Conversation) -> (Vec<Message>, Vec<Tool>) {
        if self.tools_in_template {
            return (conversation.messages.clone(), conversation.tools.clone());
        }
        let mut messages: Vec<Message> = conversation.messages.iter().map(flatten_message).collect();
        if !conversation.tools.is_empty() {
            let block = format_tools_block(&conversation.tools);
            match messages.first_mut() {
                Some(first) if first.role == Role::System => first.content = format!("{}\n\n{block}", first.content),
                _ => messages.insert(0, Message::new(Role::System, block)),
            }
        }
        (messages, Vec::new())
    }

    /// Renders `messages` and `tools` as they are, without [`ChatTemplate::prepare`].
    pub fn render_raw(&self, messages: &[Message], tools: &[Tool], add_generation_prompt: bool) -> Result<String> {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |message: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
        });
        env.add_filter("tojson", |value: minijinja::Value, kwargs: minijinja::value::Kwargs| -> std::result::Result<String, minijinja::Error> {
            let indent: Option<usize> = kwargs.get("indent")?;
            kwargs.assert_all_used()?;
            let json = serde_json::to_value(&value).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))?;
            Ok(python_json(&json, indent))
        });
        env.add_template("chat", &self.source).map_err(template_error)?;
        let template = env.get_template("chat").map_err(template_error)?;
        let messages: Vec<minijinja::Value> = messages.iter().map(message_value).collect();
        let mut context = std::collections::BTreeMap::new();
        context.insert("messages", minijinja::Value::from(messages));
        context.insert("add_generation_prompt", minijinja::Value::from(add_generation_prompt));
        context.insert("bos_token", minijinja::Value::from(self.bos_token.clone()));
        context.insert("eos_token", minijinja::Value::from(self.eos_token.clone()));
        if !tools.is_empty() {
            // NOTE: the template's `tojson` prints object keys sorted, because values pass
            // through maps without insertion order; transformers keeps the source order.
            context.insert("tools", minijinja::Value::from_serialize(tools));
        }
        template.render(context).map_err(template_error)
    }

    /// Renders a conversation; `add_generation_prompt` appends the assistant turn's header.
    pub fn render(&self, conversation: &Conversation, add_generation_prompt: bool) -> Result<String> {
        let (messages, tools) = self.prepare(conversation);
        self.render_raw(&messages, &tools, add_generation_prompt)
    }

    /// Renders the prompt of an evaluation: the conversation without its final assistant
    /// message, with the generation prompt.
    pub fn render_prompt(&self, conversation: &Conversation) -> Result<String> {
        let (prompt, _) = conversation.split_last_assistant();
        self.render(&prompt, true)
    }

    /// Renders a conversation and finds the byte range of each assistant turn in the text:
    /// from the end of the generation prompt to the end of the turn's end-of-turn marker.
    ///
    /// The range of assistant message `i` starts where the render of messages `..i` with the
    /// generation prompt ends, so that render must be a prefix of the whole render; templates
    /// that change earlier turns when later ones follow are rejected with an error.
    pub fn render_with_spans(&self, conversation: &Conversation) -> Result<(String, Vec<Range<usize>>)> {
        let (messages, tools) = self.prepare(conversation);
        let full = self.render_raw(&messages, &tools, false)?;
        let mut spans = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            if message.role != Role::Assistant {
                continue;
            }
            let prefix = self.render_raw(&messages[..index], &tools, true)?;
            if !full.starts_with(&prefix) {
                return Err(DataError::Template(format!(
                    "the render of the messages before assistant message {index} with the generation prompt is not a prefix of the whole \
                     conversation's render, so the assistant turn cannot be located; use a template that renders earlier turns the same way"
                )));
            }
            let start = prefix.len();
            let end = full[start..].find(&self.end_of_turn).map(|offset| start + offset + self.end_of_turn.len()).ok_or_else(|| {
                DataError::Template(format!(
                    "assistant message {index} is not followed by the end-of-turn marker {:?} in the render; set the marker with with_end_of_turn",
                    self.end_of_turn
                ))
            })?;
            spans.push(start..end);
        }
        Ok((full, spans))
    }

    /// Tokenizes a conversation with a loss mask that is true exactly on the assistant turns.
    ///
    /// The text between turns and each assistant turn are encoded separately and joined, so the
    /// ids before an assistant turn are the ids of the prompt that generation starts from
    /// (the runtime also encodes rendered prompts without added special tokens), and a token
    /// never straddles the assistant header and the reply.
    pub fn tokenize(&self, conversation: &Conversation, tokenizer: &Tokenizer) -> Result<TokenizedExample> {
        let (text, spans) = self.render_with_spans(conversation)?;
        let mut example = TokenizedExample::default();
        let mut position = 0;
        let push = |piece: &str, masked: bool, example: &mut TokenizedExample| -> Result<()> {
            if piece.is_empty() {
                return Ok(());
            }
            let ids = tokenizer.encode(piece, false)?;
            example.loss_mask.extend(std::iter::repeat_n(masked, ids.len()));
            example.ids.extend(ids);
            Ok(())
        };
        for span in &spans {
            push(&text[position..span.start], false, &mut example)?;
            push(&text[span.clone()], true, &mut example)?;
            position = span.end;
        }
        push(&text[position..], false, &mut example)?;
        Ok(example)
    }
}

/// Tokenizes `conversation` with the template and tokenizer: a shorthand for
/// [`ChatTemplate::tokenize`].
pub fn tokenize_conversation(conversation: &Conversation, template: &ChatTemplate, tokenizer: &Tokenizer) -> Result<TokenizedExample> {
    template.tokenize(conversation, tokenizer)
}

/// Rewrites one message for a template that does not handle tools.
fn flatten_message(message: &Message) -> Message {
    match message.role {
        Role::Assistant if !message.tool_calls.is_empty() => {
            let calls = format_tool_calls(&message.function_calls());
            let content = if message.content.is_empty() { calls } else { format!("{}\n{calls}", message.content) };
            Message::new(Role::Assistant, content)
        }
        Role::Tool => Message::new(Role::User, format!("<tool_response>\n{}\n</tool_response>", message.content)),
        _ => Message::new(message.role, message.content.clone()),
    }
}

/// The template's view of a message: `role` and `content` always, the other fields when set.
fn message_value(message: &Message) -> minijinja::Value {
    minijinja::Value::from_serialize(message)
}
