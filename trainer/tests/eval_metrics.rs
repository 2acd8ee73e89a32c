//! Reply parsing, call-level metrics and BFCL's AST check on hand-made cases.

use serde_json::{json, Value};
use tinyllm_train::data::bfcl::{BfclReference, ExpectedCall};
use tinyllm_train::data::FunctionCall;
use tinyllm_train::eval::bfcl_match::{check, standardize_string};
use tinyllm_train::eval::{parse_reply, score_calls, summarize};

fn call(name: &str, arguments: Value) -> FunctionCall {
    FunctionCall::new(name, arguments.as_object().unwrap().clone())
}

#[test]
fn parses_tool_call_blocks() {
    let reply = "Sure.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": 2}\"}</tool_call> done";
    let parsed = parse_reply(reply);
    assert_eq!(parsed.calls, vec![call("a", json!({"x": 1})), call("b", json!({"y": 2}))]);
    assert!(parsed.valid_json());
}

#[test]
fn parses_bare_json_with_text_around() {
    let parsed = parse_reply("Calling now: [{\"name\": \"a\", \"arguments\": {}}, {\"function\": {\"name\": \"b\", \"parameters\": {\"k\": \"v\"}}}] ok");
    assert_eq!(parsed.calls, vec![call("a", json!({})), call("b", json!({"k": "v"}))]);
    assert!(parsed.valid_json());
    let parsed = parse_reply("The {weather} is {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}");
    assert_eq!(parsed.calls, vec![call("get_weather", json!({"city": "Oslo"}))]);
}

#[test]
fn invalid_or_missing_json() {
    let parsed = parse_reply("<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": }\n</tool_call>");
    assert!(parsed.calls.is_empty());
    assert_eq!(parsed.candidates, 1);
    assert!(!parsed.valid_json());
    assert_eq!(parsed.errors.len(), 1);
    let parsed = parse_reply("I don't know.");
    assert_eq!(parsed.candidates, 0);
    assert!(!parsed.valid_json());
    // An unclosed block still parses.
    let parsed = parse_reply("<tool_call>\n{\"name\": \"a\", \"arguments\": {}}");
    assert_eq!(parsed.calls.len(), 1);
}

#[test]
fn metrics_on_known_cases() {
    let expected = vec![call("get_weather", json!({"city": "Paris", "day": "monday"}))];
    let cases = [
        // Exact, with a number written as float where the reference has none.
        ("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"day\": \"monday\", \"city\": \"Paris\"}}</tool_call>", true, true, true, 2),
        // Right name, one wrong argument.
        ("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\", \"day\": \"monday\"}}</tool_call>", true, false, false, 1),
        // Wrong name, right arguments.
        ("<tool_call>{\"name\": \"play_music\", \"arguments\": {\"city\": \"Paris\", \"day\": \"monday\"}}</tool_call>", false, true, false, 0),
        // No call.
        ("It is sunny.", false, false, false, 0),
    ];
    let mut all = Vec::new();
    for (reply, name, arguments, full, true_positives) in cases {
        let scores = score_calls(&expected, &parse_reply(reply));
        assert_eq!(scores.name_match, name, "{reply}");
        assert_eq!(scores.arguments_match, arguments, "{reply}");
        assert_eq!(scores.full_match, full, "{reply}");
        assert_eq!(scores.argument_true_positives, true_positives, "{reply}");
        all.push(scores);
    }
    let metrics = summarize(&all);
    assert_eq!(metrics.examples, 4);
    assert_eq!(metrics.valid_json, 3);
    assert_eq!(metrics.name_matches, 2);
    assert_eq!(metrics.arguments_matches, 2);
    assert_eq!(metrics.full_matches, 1);
    assert!((metrics.valid_json_rate - 0.75).abs() < 1e-12);
    assert!((metrics.argument_precision - 3.0 / 6.0).abs() < 1e-12);
    assert!((metrics.argument_recall - 3.0 / 8.0).abs() < 1e-12);
}

#[test]
fn metrics_parallel_order_and_numbers() {
    let expected = vec![call("f", json!({"n": 1})), call("f", json!({"n": 2.0}))];
    let scores = score_calls(&expected, &parse_reply("[{\"name\": \"f\", \"arguments\": {\"n\": 2}}, {\"name\": \"f\", \"arguments\": {\"n\": 1.0}}]"));
    assert!(scores.full_match);
    let scores = score_calls(&expected, &parse_reply("[{\"name\": \"f\", \"arguments\": {\"n\": 1}}, {\"name\": \"f\", \"arguments\": {\"n\": 1}}]"));
    assert!(scores.name_match);
    assert!(!scores.full_match);
}

fn reference(category: &str, functions: Value, answers: Vec<(&str, Value)>) -> BfclReference {
    BfclReference {
        category: category.into(),
        functions: functions.as_array().unwrap().clone(),
        possible_answer: answers
            .into_iter()
            .map(|(name, alternatives)| ExpectedCall {
                name: name.into(),
                alternatives: serde_json::from_value(alternatives).unwrap(),
            })
            .collect(),
    }
}

fn triangle() -> BfclReference {
    reference(
        "simple_python",
        json!([{"name": "calculate_triangle_area", "parameters": {"type": "dict", "properties": {
            "base": {"type": "integer"}, "height": {"type": "float"}, "unit": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["base", "height"]}}]),
        vec![("calculate_triangle_area", json!({"base": [10], "height": [5.0], "unit": ["units", ""], "tags": [["Right Angle"], ""]}))],
    )
}

#[test]
fn bfcl_accepts_alternatives_and_normalization() {
    let reference = triangle();
    let ok = [
        json!({"base": 10, "height": 5.0}),
        json!({"base": 10, "height": 5, "unit": "units"}),
        json!({"base": 10, "height": 5.0, "unit": "UNITS"}),
        json!({"base": 10, "height": 5.0, "tags": ["right-angle"]}),
    ];
    for arguments in ok {
        let outcome = check(&reference, &[call("calculate_triangle_area", arguments.clone())]);
        assert!(outcome.valid, "{arguments}: {outcome:?}");
    }
    assert_eq!(standardize_string("April 1, 2024"), "april12024");
    assert_eq!(standardize_string("it's"), "it\"s");
}

#[test]
fn bfcl_rejects_wrong_type_missing_and_unknown() {
    let reference = triangle();
    let cases = [
        (json!({"base": "10", "height": 5.0}), "type_error:simple"),
        (json!({"base": 10.0, "height": 5.0}), "type_error:simple"),
        (json!({"base": 10}), "simple_function_checker:missing_required"),
        (json!({"base": 10, "height": 5.0, "color": "red"}), "simple_function_checker:unexpected_param"),
        (json!({"base": 11, "height": 5.0}), "value_error:others"),
        (json!({"base": 10, "height": 5.0, "unit": "cm"}), "value_error:string"),
        (json!({"base": 10, "height": 5.0, "tags": ["acute"]}), "value_error:list/tuple"),
    ];
    for (arguments, error_type) in cases {
        let outcome = check(&reference, &[call("calculate_triangle_area", arguments.clone())]);
        assert!(!outcome.valid, "{arguments}");
        assert_eq!(outcome.error_type, error_type, "{arguments}: {}", outcome.error);
    }
    let outcome = check(&reference, &[call("triangle_area", json!({"base": 10, "height": 5.0}))]);
    assert_eq!(outcome.error_type, "simple_function_checker:wrong_func_name");
    let outcome = check(&reference, &[]);
    assert_eq!(outcome.error_type, "wrong_count");
}

#[test]
fn bfcl_optional_parameter_without_marker() {
    let reference = reference(
        "simple_python",
        json!([{"name": "f", "parameters": {"type": "dict", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a"]}}]),
        vec![("f", json!({"a": [1], "b": [2]}))],
    );
    let outcome = check(&reference, &[call("f", json!({"a": 1}))]);
    assert_eq!(outcome.error_type, "simple_function_checker:missing_optional");
    assert!(check(&reference, &[call("f", json!({"a": 1, "b": 2}))]).valid);
}

#[test]
fn bfcl_parallel_order_swapped() {
    let reference = reference(
        "parallel",
        json!([{"name": "spotify.play", "parameters": {"type": "dict", "properties": {"artist": {"type": "string"}, "duration": {"type": "integer"}}, "required": ["artist", "duration"]}}]),
        vec![
            ("spotify.play", json!({"artist": ["Taylor Swift"], "duration": [20]})),
            ("spotify.play", json!({"artist": ["Maroon 5"], "duration": [15]})),
        ],
    );
    let swapped = [call("spotify.play", json!({"artist": "Maroon 5", "duration": 15})), call("spotify.play", json!({"artist": "taylor swift", "duration": 20}))];
    assert!(check(&reference, &swapped).valid);
    let twice = [call("spotify.play", json!({"artist": "Maroon 5", "duration": 15})), call("spotify.play", json!({"artist": "Maroon 5", "duration": 15}))];
    assert!(!check(&reference, &twice).valid);
    assert!(!check(&reference, &swapped[..1]).valid);
}

#[test]
fn bfcl_dict_and_list_of_dicts() {
    let reference = reference(
        "simple_python",
        json!([{"name": "db.query", "parameters": {"type": "dict", "properties": {
            "conditions": {"type": "dict", "properties": {}},
            "rows": {"type": "array", "items": {"type": "dict"}}}, "required": ["conditions"]}}]),
        vec![("db.query", json!({
            "conditions": [{"department": ["Science"], "school": ["Bluebird High School", "Bluebird HS"]}],
            "rows": [[{"field": ["age"], "value": [25]}], ""]}))],
    );
    assert!(check(&reference, &[call("db.query", json!({"conditions": {"department": "science", "school": "Bluebird HS"}}))]).valid);
    assert!(check(&reference, &[call("db.query", json!({"conditions": {"department": "Science", "school": "Bluebird HS"}, "rows": [{"field": "age", "value": 25}]}))]).valid);
    let outcome = check(&reference, &[call("db.query", json!({"conditions": {"department": "Science"}}))]);
    assert_eq!(outcome.error_type, "value_error:dict_key");
    let outcome = check(&reference, &[call("db.query", json!({"conditions": {"department": "Science", "school": "Bluebird HS"}, "rows": [{"field": "age", "value": 26}]}))]);
    assert!(!outcome.valid);
}

#[test]
fn bfcl_irrelevance_expects_no_call() {
    let reference = reference("irrelevance", json!([{"name": "bmi", "parameters": {"type": "dict", "properties": {}}}]), vec![]);
    assert!(check(&reference, &[]).valid);
    let outcome = check(&reference, &[call("bmi", json!({}))]);
    assert_eq!(outcome.error_type, "irrelevance:function_called");
}
