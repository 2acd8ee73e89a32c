//! Rendering with chat templates and the assistant loss mask, on SmolLM2's and Qwen3's real
//! tokenizers and templates.

mod data_common;

use serde_json::json;
use tinyllm_train::data::render::{format_tool_calls, load_tokenizer_dir, python_json};
use tinyllm_train::data::{ChatTemplate, Conversation, FunctionCall, FunctionSpec, Message, Role, Tool};

fn weather_tool() -> Tool {
    Tool::from(FunctionSpec {
        name: "get_weather".into(),
        description: "Weather of a city.".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    })
}

fn call(city: &str) -> FunctionCall {
    FunctionCall::new("get_weather", json!({"city": city}).as_object().unwrap().clone())
}

fn tool_conversation() -> Conversation {
    Conversation {
        id: None,
        messages: vec![
            Message::new(Role::User, "What is the weather in Paris?"),
            Message::assistant_calls(vec![call("Paris")]),
            Message::new(Role::User, "And in Oslo?"),
            Message::assistant_calls(vec![call("Oslo")]),
        ],
        tools: vec![weather_tool()],
        bfcl: None,
    }
}

#[test]
fn python_json_matches_json_dumps() {
    let value = json!({"b": [1, 2.5, "x\"y"], "a": {}});
    assert_eq!(python_json(&value, None), r#"{"a": {}, "b": [1, 2.5, "x\"y"]}"#);
    assert_eq!(python_json(&json!([1, {"k": true}]), Some(2)), "[\n  1,\n  {\n    \"k\": true\n  }\n]");
    assert_eq!(format_tool_calls(&[call("Paris")]), "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
}

#[test]
fn smollm2_mask_covers_assistant_tokens() {
    let Some((tokenizer, template)) = data_common::smollm2_tokenizer("smollm2_mask_covers_assistant_tokens") else { return };
    assert!(!template.handles_tools(), "SmolLM2's template knows nothing of tools");
    let conversation = tool_conversation();
    let (text, spans) = template.render_with_spans(&conversation).unwrap();
    assert_eq!(spans.len(), 2);
    assert!(text.starts_with("<|im_start|>system\nYou may call one or more functions"), "{text}");
    assert!(text.contains("<tools>\n[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""), "{text}");

    let example = template.tokenize(&conversation, &tokenizer).unwrap();
    assert_eq!(example.ids.len(), example.loss_mask.len());
    // The ids equal the tokenization of the whole render.
    assert_eq!(example.ids, tokenizer.encode(&text, false).unwrap());

    let expected_replies: Vec<String> = ["Paris", "Oslo"].iter().map(|city| format!("{}<|im_end|>", format_tool_calls(&[call(city)]))).collect();
    assert_eq!(&text[spans[0].clone()], expected_replies[0]);
    assert_eq!(&text[spans[1].clone()], expected_replies[1]);

    // Masked tokens decode to the assistant text, end-of-turn token included.
    let masked = example.masked_ids();
    assert_eq!(tokenizer.decode(&masked, false).unwrap(), expected_replies.concat());
    let im_end = tokenizer.token_to_id("<|im_end|>").unwrap();
    assert_eq!(masked.iter().filter(|&&id| id == im_end).count(), 2, "each turn's <|im_end|> is masked");

    // Runs of masked tokens match the assistant turns, and the header before each is unmasked.
    let mut runs = Vec::new();
    let mut start = None;
    for (index, &masked) in example.loss_mask.iter().chain(std::iter::once(&false)).enumerate() {
        match (masked, start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                runs.push(begin..index);
                start = None;
            }
            _ => {}
        }
    }
    assert_eq!(runs.len(), 2);
    for (run, reply) in runs.iter().zip(&expected_replies) {
        assert_eq!(&tokenizer.decode(&example.ids[run.clone()], false).unwrap(), reply);
        let before = tokenizer.decode(&example.ids[run.start - 6..run.start], false).unwrap();
        assert!(before.ends_with("<|im_start|>assistant\n"), "{before:?}");
        assert_eq!(example.ids[run.end - 1], im_end);
    }
    // The token after each turn's <|im_end|> (the newline) is not masked.
    assert!(!example.loss_mask[runs[0].end]);
}

#[test]
fn smollm2_prompt_is_prefix_of_training_ids() {
    let Some((tokenizer, template)) = data_common::smollm2_tokenizer("smollm2_prompt_is_prefix_of_training_ids") else { return };
    let mut conversation = tool_conversation();
    conversation.messages.truncate(2);
    let prompt = template.render_prompt(&conversation).unwrap();
    assert!(prompt.ends_with("<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n"), "{prompt}");
    let prompt_ids = tokenizer.encode(&prompt, false).unwrap();
    let example = template.tokenize(&conversation, &tokenizer).unwrap();
    assert_eq!(&example.ids[..prompt_ids.len()], &prompt_ids[..]);
    assert!(example.loss_mask[..prompt_ids.len()].iter().all(|&m| !m));
    assert!(example.loss_mask[prompt_ids.len()]);
}

#[test]
fn smollm2_plain_chat_keeps_default_system() {
    let Some((tokenizer, template)) = data_common::smollm2_tokenizer("smollm2_plain_chat_keeps_default_system") else { return };
    let conversation = Conversation {
        id: None,
        messages: vec![Message::new(Role::User, "Hi"), Message::new(Role::Assistant, "Hello! How can I help?")],
        tools: vec![],
        bfcl: None,
    };
    let text = template.render(&conversation, false).unwrap();
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "{text}");
    let example = template.tokenize(&conversation, &tokenizer).unwrap();
    assert_eq!(tokenizer.decode(&example.masked_ids(), true).unwrap(), "Hello! How can I help?");
}

#[test]
fn qwen3_template_gets_tools_and_calls() {
    let Some(dir) = data_common::shared_file("qwen3_template_gets_tools_and_calls", "tokenizers/qwen3") else { return };
    let (tokenizer, template) = load_tokenizer_dir(&dir).unwrap();
    assert!(template.handles_tools());
    let conversation = tool_conversation();
    let (text, spans) = template.render_with_spans(&conversation).unwrap();
    assert!(text.starts_with("<|im_start|>system\n# Tools\n"), "{text}");
    assert!(text.contains("<tools>\n{\"function\": {\"description\": \"Weather of a city.\", \"name\": \"get_weather\""), "{text}");
    // Earlier turns have no think block; the last assistant turn gets an empty one.
    assert_eq!(&text[spans[0].clone()], "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>");
    assert_eq!(
        &text[spans[1].clone()],
        "<think>\n\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call><|im_end|>"
    );
    let example = template.tokenize(&conversation, &tokenizer).unwrap();
    let masked = tokenizer.decode(&example.masked_ids(), false).unwrap();
    assert_eq!(masked, format!("{}{}", &text[spans[0].clone()], &text[spans[1].clone()]));
}

#[test]
fn system_prompt_style_merges_into_system_message() {
    let template = ChatTemplate::new(
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
        "",
        "</s>",
    )
    .unwrap();
    let mut conversation = tool_conversation();
    conversation.messages.insert(0, Message::new(Role::System, "Be brief."));
    conversation.messages.push(Message { tool_call_id: Some("1".into()), ..Message::new(Role::Tool, "{\"temp\": 3}") });
    let text = template.render(&conversation, false).unwrap();
    assert!(text.starts_with("<system>Be brief.\n\nYou may call"), "{text}");
    assert!(text.ends_with("<user><tool_response>\n{\"temp\": 3}\n</tool_response></s>"), "{text}");
}

#[test]
fn missing_end_of_turn_is_template_error() {
    let template = ChatTemplate::new("{% for m in messages %}{{ m.content }}{% endfor %}", "", "</s>").unwrap();
    let conversation = Conversation {
        id: None,
        messages: vec![Message::new(Role::User, "Hi"), Message::new(Role::Assistant, "Hello")],
        tools: vec![],
        bfcl: None,
    };
    let error = template.render_with_spans(&conversation).unwrap_err().to_string();
    assert!(error.contains("end-of-turn marker"), "{error}");
}
