//! The SNIPS and BFCL importers and the train/dev split, on hand-made and real inputs.

mod data_common;

use serde_json::json;
use tinyllm_train::data::bfcl::{self, BfclOptions, ExpectedCall};
use tinyllm_train::data::cli::{run_bfcl, run_snips, BfclArgs, OutputArgs, SnipsArgs};
use tinyllm_train::data::snips::{self, SlotDescriptions, SnipsOptions, ToolChoice, Utterance};
use tinyllm_train::data::split::{fnv1a64, is_dev, split_train_dev};
use tinyllm_train::data::{read_conversations, Role};

#[test]
fn fnv1a_known_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn split_is_deterministic_and_sized() {
    let texts: Vec<String> = (0..10_000).map(|i| format!("question number {i}")).collect();
    let dev = texts.iter().filter(|t| is_dev(t, 0.1)).count();
    assert!((900..1100).contains(&dev), "dev count {dev} of 10000 at fraction 0.1");
    assert!(texts.iter().all(|t| is_dev(t, 0.1) == is_dev(t, 0.1)));
    assert_eq!(texts.iter().filter(|t| is_dev(t, 0.0)).count(), 0);
    assert_eq!(texts.iter().filter(|t| is_dev(t, 1.0)).count(), 10_000);
    assert!(split_train_dev(Vec::new(), 1.5).is_err());
}

#[test]
fn snips_names_and_decoding() {
    assert_eq!(snips::function_name("GetWeather"), "get_weather");
    assert_eq!(snips::function_name("SearchScreeningEvent"), "search_screening_event");
    assert_eq!(snips::function_name("AddToPlaylist"), "add_to_playlist");
    // A pizza emoji written as two CESU-8 surrogates, and a lone Latin-1 byte.
    let bytes = b"Pop \xed\xa0\xbc\xed\xbd\x95 caf\xe9";
    assert_eq!(snips::decode_text(bytes), "Pop \u{1F355} caf\u{e9}");
    assert_eq!(snips::decode_text("Música".as_bytes()), "Música");
}

fn utterance(intent: &str, index: usize, spans: &[(&str, Option<&str>)]) -> Utterance {
    Utterance { intent: intent.into(), index, spans: spans.iter().map(|(t, e)| (t.to_string(), e.map(str::to_string))).collect() }
}

#[test]
fn snips_schema_from_hand_made_data() {
    let mut utterances = Vec::new();
    for (i, (stars, book)) in [("5", Some("Dune")), ("4", Some("Emma")), ("3", None), ("2", Some("Dune"))].iter().enumerate() {
        let mut spans = vec![("rate ", None), (*stars, Some("rating_value")), (" stars", None)];
        if let Some(book) = book {
            spans.push((" for ", None));
            spans.push((book, Some("object_name")));
        }
        utterances.push(utterance("RateBook", i, &spans));
    }
    utterances.push(utterance("RateBook", 4, &[("rate ", None), ("1", Some("rating_value")), (" and ", None), ("2", Some("rating_value"))]));
    let import = snips::build(&[("RateBook".into(), utterances)], &SnipsOptions::default());
    let function = &import.functions[0];
    assert_eq!(function.name, "rate_book");
    assert_eq!(function.parameters["properties"]["rating_value"]["type"], "integer");
    assert_eq!(function.parameters["properties"]["object_name"]["type"], "string");
    assert_eq!(function.parameters["properties"]["object_name"]["description"], "Object name, for example \"Dune\" or \"Emma\".");
    // rating_value is in 5 of 5 utterances, object_name in 3 of 5 (below 95%).
    assert_eq!(function.parameters["required"], json!(["rating_value"]));
    let summary = &import.intents["RateBook"];
    assert_eq!(summary.skipped_repeated_slot, 1);
    assert_eq!(summary.kept, 4);
    let first = &import.conversations[0];
    assert_eq!(first.messages[0].content, "rate 5 stars for Dune");
    let call = &first.messages[1].tool_calls[0].function;
    assert_eq!(call.arguments.get("rating_value"), Some(&json!(5)));
    assert_eq!(call.arguments.get("object_name"), Some(&json!("Dune")));
}

#[test]
fn snips_slot_description_choices() {
    let utterances: Vec<Utterance> = ["Dune", "Emma"].iter().enumerate().map(|(i, book)| utterance("RateBook", i, &[("rate ", None), (book, Some("object_name"))])).collect();
    let description = |choice: SlotDescriptions| {
        let options = SnipsOptions { slot_descriptions: choice, ..SnipsOptions::default() };
        let import = snips::build(&[("RateBook".into(), utterances.clone())], &options);
        import.functions[0].parameters["properties"]["object_name"].clone()
    };
    assert_eq!(description(SlotDescriptions::Examples), json!({"type": "string", "description": "Object name, for example \"Dune\" or \"Emma\"."}));
    assert_eq!(description(SlotDescriptions::Names), json!({"type": "string", "description": "Object name."}));
    assert_eq!(description(SlotDescriptions::None), json!({"type": "string"}));
}

#[test]
fn snips_candidate_tools() {
    let intents = ["AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook"];
    let by_intent: Vec<(String, Vec<Utterance>)> = intents
        .iter()
        .map(|intent| (intent.to_string(), (0..20).map(|i| utterance(intent, i, &[(&format!("{intent} request {i} for "), None), ("x", Some("thing"))])).collect()))
        .collect();
    let options = SnipsOptions { tools: ToolChoice::Candidates, candidates: 3, ..SnipsOptions::default() };
    let import = snips::build(&by_intent, &options);
    let order: Vec<String> = import.functions.iter().map(|f| f.name.clone()).collect();
    let mut sets = std::collections::BTreeSet::new();
    for conversation in &import.conversations {
        let names: Vec<String> = conversation.tools.iter().map(|t| t.function.name.clone()).collect();
        let own = &conversation.messages[1].tool_calls[0].function.name;
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(own), "{own} missing from {names:?}");
        let positions: Vec<usize> = names.iter().map(|n| order.iter().position(|o| o == n).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "tools not in intent order: {names:?}");
        sets.insert(names);
    }
    // 5 functions give 6 possible sets around each own function; a hash that ignored the
    // utterance would give one set per intent.
    assert!(sets.len() > intents.len(), "only {} distinct tool sets", sets.len());
    // The same input gives the same sets.
    let again = snips::build(&by_intent, &options);
    assert_eq!(again.conversations, import.conversations);
}

#[test]
fn snips_without_tools() {
    let by_intent: Vec<(String, Vec<Utterance>)> = ["GetWeather", "RateBook"]
        .iter()
        .map(|intent| (intent.to_string(), (0..4).map(|i| utterance(intent, i, &[("weather in ", None), ("Oslo", Some("city"))])).collect()))
        .collect();
    let with_tools = snips::build(&by_intent, &SnipsOptions { tools: ToolChoice::All, ..SnipsOptions::default() });
    let without = snips::build(&by_intent, &SnipsOptions { tools: ToolChoice::None, ..SnipsOptions::default() });
    assert_eq!(without.conversations.len(), with_tools.conversations.len());
    for (bare, full) in without.conversations.iter().zip(&with_tools.conversations) {
        assert!(bare.tools.is_empty(), "{:?}", bare.tools);
        assert_eq!(full.tools.len(), 2);
        // The calls are the same; only the offered schemas go.
        assert_eq!(bare.messages, full.messages);
    }
    assert_eq!(without.functions, with_tools.functions);
}

#[test]
fn snips_real_import() {
    let Some(dir) = data_common::shared_file("snips_real_import", "datasets/snips") else { return };
    let import = snips::import_dir(&dir, &SnipsOptions::default()).unwrap();
    assert_eq!(import.functions.len(), 7);
    let read: usize = import.intents.values().map(|s| s.utterances).sum();
    assert_eq!(read, 13_784);
    let kept: usize = import.intents.values().map(|s| s.kept).sum();
    let skipped: usize = import.intents.values().map(|s| s.skipped_repeated_slot).sum();
    assert_eq!(kept + skipped, read);
    assert_eq!(import.conversations.len(), kept);
    for (intent, summary) in &import.intents {
        eprintln!("{intent}: {} read, {} kept, {} skipped (repeated slot)", summary.utterances, summary.kept, summary.skipped_repeated_slot);
    }
    let play = import.conversations.iter().find(|c| c.messages[0].content.contains("Pop Punk Perfection")).unwrap();
    assert!(play.messages[0].content.contains('\u{1F355}'), "{}", play.messages[0].content);
    let rate = import.functions.iter().find(|f| f.name == "rate_book").unwrap();
    assert_eq!(rate.parameters["properties"]["best_rating"]["type"], "integer");
    assert!(rate.parameters["required"].as_array().unwrap().contains(&json!("rating_value")));
    assert!(import.conversations.iter().all(|c| c.tools.len() == 7));
}

#[test]
fn snips_cli_writes_splits() {
    let Some(dir) = data_common::shared_file("snips_cli_writes_splits", "datasets/snips") else { return };
    let out = tempfile::tempdir().unwrap();
    let args = SnipsArgs { input: dir, output: OutputArgs { out: out.path().to_path_buf(), dev_fraction: 0.1 }, limit: Some(50), tools: ToolChoice::Intent, candidates: 3, slot_descriptions: SlotDescriptions::Examples };
    let summary = run_snips(&args).unwrap();
    let train = read_conversations(&out.path().join("train.jsonl")).unwrap();
    let dev = read_conversations(&out.path().join("dev.jsonl")).unwrap();
    assert_eq!(train.len(), summary.train);
    assert_eq!(dev.len(), summary.dev);
    assert_eq!(train.len() + dev.len(), 7 * 50);
    assert!(out.path().join("tools.json").exists());
    assert!(out.path().join("summary.json").exists());
    assert!(dev.iter().all(|c| c.tools.len() == 1));
    // Running again gives the same files.
    let first = std::fs::read(out.path().join("dev.jsonl")).unwrap();
    run_snips(&args).unwrap();
    assert_eq!(std::fs::read(out.path().join("dev.jsonl")).unwrap(), first);
}

#[test]
fn bfcl_schema_and_targets() {
    let schema = json!({"type": "dict", "properties": {"x": {"type": "float"}, "xs": {"type": "tuple", "items": {"type": "any"}}}, "required": ["x"]});
    let converted = bfcl::to_json_schema(&schema);
    assert_eq!(converted["type"], "object");
    assert_eq!(converted["properties"]["x"]["type"], "number");
    assert_eq!(converted["properties"]["xs"]["type"], "array");
    assert_eq!(converted["properties"]["xs"]["items"]["type"], "string");

    let functions = vec![json!({"name": "area", "parameters": {"type": "dict", "properties": {
        "base": {"type": "integer"}, "unit": {"type": "string"}, "flag": {"type": "boolean"},
        "dims": {"type": "dict", "properties": {}}}, "required": ["base"]}})];
    let expected = ExpectedCall {
        name: "area".into(),
        alternatives: [
            ("base".to_string(), vec![json!(10)]),
            ("unit".to_string(), vec![json!("units"), json!("")]),
            ("flag".to_string(), vec![json!(""), json!(true)]),
            ("dims".to_string(), vec![json!({"w": [20, 21], "h": ["", 12]})]),
            ("ghost".to_string(), vec![json!("")]),
        ]
        .into_iter()
        .collect(),
    };
    let call = bfcl::target_call(&expected, &functions);
    assert_eq!(serde_json::Value::Object(call.arguments), json!({"base": 10, "unit": "units", "dims": {"w": 20}}));
}

#[test]
fn bfcl_real_import() {
    let Some(dir) = data_common::shared_file("bfcl_real_import", "datasets/bfcl") else { return };
    let import = bfcl::import_dir(&dir, &BfclOptions::default()).unwrap();
    let expected = [("irrelevance", 240), ("multiple", 200), ("parallel", 200), ("parallel_multiple", 200), ("simple_python", 400)];
    for (category, count) in expected {
        assert_eq!(import.counts[category], count, "{category}");
    }
    let first = import.conversations.iter().find(|c| c.id.as_deref() == Some("simple_python_0")).unwrap();
    assert_eq!(first.tools[0].function.parameters["type"], "object");
    let call = &first.messages.last().unwrap().tool_calls[0].function;
    assert_eq!(serde_json::Value::Object(call.arguments.clone()), json!({"base": 10, "height": 5, "unit": "units"}));
    let parallel = import.conversations.iter().find(|c| c.id.as_deref() == Some("parallel_0")).unwrap();
    assert_eq!(parallel.messages.last().unwrap().tool_calls.len(), 2);
    let irrelevant = import.conversations.iter().find(|c| c.id.as_deref() == Some("irrelevance_0")).unwrap();
    let last = irrelevant.messages.last().unwrap();
    assert_eq!(last.role, Role::Assistant);
    assert!(last.tool_calls.is_empty());
    assert!(irrelevant.bfcl.as_ref().unwrap().possible_answer.is_empty());
}

#[test]
fn bfcl_cli_round_trip_and_bad_category() {
    let Some(dir) = data_common::shared_file("bfcl_cli_round_trip_and_bad_category", "datasets/bfcl") else { return };
    let out = tempfile::tempdir().unwrap();
    let mut args = BfclArgs {
        input: dir,
        output: OutputArgs { out: out.path().to_path_buf(), dev_fraction: 0.2 },
        limit: Some(20),
        categories: vec!["simple_python".into(), "parallel".into()],
    };
    let summary = run_bfcl(&args).unwrap();
    assert_eq!(summary.train + summary.dev, 40);
    let dev = read_conversations(&out.path().join("dev.jsonl")).unwrap();
    assert!(dev.iter().all(|c| c.bfcl.is_some()));
    args.categories = vec!["live_simple".into()];
    let error = run_bfcl(&args).unwrap_err().to_string();
    assert!(error.contains("unknown BFCL category \"live_simple\""), "{error}");
}

#[test]
fn bfcl_missing_answer_file_names_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("BFCL_v4_simple_python.json"), "{\"id\": \"simple_python_0\", \"question\": [[]], \"function\": []}\n").unwrap();
    let options = BfclOptions { categories: vec!["simple_python".into()], limit_per_category: None };
    let error = bfcl::import_dir(dir.path(), &options).unwrap_err().to_string();
    assert!(error.contains("possible_answer/BFCL_v4_simple_python.json"), "{error}");
}
