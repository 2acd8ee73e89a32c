//! The JSONL chat format: reading, writing and errors on bad input.

use std::path::Path;

use serde_json::json;
use tinyllm_train::data::jsonl::{read_conversations, write_conversations};
use tinyllm_train::data::{Conversation, DataError, FunctionCall, Message, Role};

fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const VALID: &str = r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}

{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
"#;

#[test]
fn reads_openai_and_trl_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "chat.jsonl", VALID);
    let conversations = read_conversations(&path).unwrap();
    assert_eq!(conversations.len(), 2);
    let first = &conversations[0];
    assert_eq!(first.messages.len(), 3);
    assert_eq!(first.messages[2].role, Role::Assistant);
    assert_eq!(first.messages[2].content, "");
    let call = &first.messages[2].tool_calls[0].function;
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments.get("city"), Some(&json!("Paris")));
    assert_eq!(first.tools[0].function.name, "get_weather");
    assert!(conversations[1].tools.is_empty());
}

#[test]
fn write_then_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "chat.jsonl", VALID);
    let conversations = read_conversations(&path).unwrap();
    let copy = dir.path().join("copy.jsonl");
    write_conversations(&copy, &conversations).unwrap();
    assert_eq!(read_conversations(&copy).unwrap(), conversations);
    let text = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains(r#""arguments":{"city":"Paris"}"#), "arguments are written as an object: {text}");
}

#[test]
fn builds_assistant_call_messages() {
    let arguments = json!({"city": "Oslo"}).as_object().unwrap().clone();
    let message = Message::assistant_calls(vec![FunctionCall::new("get_weather", arguments)]);
    let conversation = Conversation { id: None, messages: vec![Message::new(Role::User, "Oslo?"), message], tools: vec![], bfcl: None };
    let (prompt, last) = conversation.split_last_assistant();
    assert_eq!(prompt.messages.len(), 1);
    assert_eq!(last.unwrap().function_calls()[0].name, "get_weather");
}

fn read_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "bad.jsonl", text);
    match read_conversations(&path) {
        Ok(conversations) => panic!("expected an error, read {conversations:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn malformed_line_names_file_and_line() {
    let message = read_error("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n{\"messages\": [\n");
    assert!(message.contains("bad.jsonl:2"), "{message}");
    assert!(message.contains("invalid JSON"), "{message}");
}

#[test]
fn unknown_role_names_field() {
    let message = read_error("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"bot\", \"content\": \"b\"}]}\n");
    assert!(message.contains("bad.jsonl:1"), "{message}");
    assert!(message.contains("messages[1].role"), "{message}");
    assert!(message.contains("\"bot\""), "{message}");
    assert!(message.contains("use system, user, assistant or tool"), "{message}");
}

#[test]
fn non_object_arguments_name_field() {
    let line = r#"{"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": [1, 2]}}]}]}"#;
    let message = read_error(line);
    assert!(message.contains("messages[0].tool_calls[0].function.arguments"), "{message}");
    assert!(message.contains("[1,2]"), "{message}");
    let string_line = r#"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "not json"}}]}]}"#;
    let message = read_error(string_line);
    assert!(message.contains("not valid JSON"), "{message}");
}

#[test]
fn tool_calls_on_user_message_rejected() {
    let line = r#"{"messages": [{"role": "user", "content": "x", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]}"#;
    let message = read_error(line);
    assert!(message.contains("messages[0].tool_calls"), "{message}");
}

#[test]
fn missing_messages_rejected() {
    let message = read_error("{\"tools\": []}\n");
    assert!(message.contains("field `messages`"), "{message}");
    let message = read_error("{\"messages\": []}\n");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn missing_file_is_read_error() {
    let error = read_conversations(Path::new("/nonexistent/train.jsonl")).unwrap_err();
    assert!(matches!(error, DataError::Read { .. }), "{error}");
    assert!(error.to_string().contains("/nonexistent/train.jsonl"));
}
