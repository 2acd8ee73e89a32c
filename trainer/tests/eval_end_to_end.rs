//! End-to-end evaluation of untrained SmolLM2-135M-Instruct on a few SNIPS dev examples: the
//! data command, conversion, greedy generation with the runtime, scoring and the report.

mod data_common;

use tinyllm_convert::recipe::{Preset, Recipe};
use tinyllm_convert::ConvertOptions;
use tinyllm_train::data::cli::{run_snips, OutputArgs, SnipsArgs};
use tinyllm_train::data::snips::{SlotDescriptions, ToolChoice};
use tinyllm_train::eval::cli::{run, EvalArgs, EvalConfig};

const EXAMPLES: usize = 4;

#[test]
fn snips_dev_eval_with_smollm2() {
    let test = "snips_dev_eval_with_smollm2";
    let Some(gguf) = data_common::shared_file(test, data_common::SMOLLM2_GGUF) else { return };
    let Some(snips_dir) = data_common::shared_file(test, "datasets/snips") else { return };
    let work = tempfile::tempdir().unwrap();

    let data_dir = work.path().join("snips");
    let args = SnipsArgs {
        input: snips_dir,
        output: OutputArgs { out: data_dir.clone(), dev_fraction: 0.1 },
        limit: Some(30),
        tools: ToolChoice::Intent,
        candidates: 3,
        slot_descriptions: SlotDescriptions::Examples,
    };
    let summary = run_snips(&args).unwrap();
    assert!(summary.dev >= EXAMPLES, "dev split has {} examples", summary.dev);

    let model = work.path().join("smollm2.tllm");
    let options = ConvertOptions { recipe: Recipe { preset: Preset::Source, ..Recipe::default() } };
    tinyllm_convert::convert(&gguf, &model, &options).unwrap();

    let config_path = work.path().join("eval.toml");
    std::fs::write(
        &config_path,
        format!("model = \"smollm2.tllm\"\ndata = \"snips/dev.jsonl\"\nmax_examples = {EXAMPLES}\nmax_new_tokens = 48\nreport = \"report.json\"\nthreads = 2\n"),
    )
    .unwrap();
    let config = EvalConfig::load(&config_path).unwrap();
    assert_eq!(config.model.as_deref(), Some(work.path().join("smollm2.tllm").as_path()));

    let args = EvalArgs { config: Some(config_path.clone()), max_new_tokens: Some(40), ..EvalArgs::default() };
    run(&args).unwrap();

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(work.path().join("report.json")).unwrap()).unwrap();
    let metrics = &report["metrics"];
    eprintln!("{}", serde_json::to_string_pretty(metrics).unwrap());
    for result in report["results"].as_array().unwrap() {
        eprintln!("{}: {:?} -> {}", result["id"], result["reply"].as_str().unwrap(), result["predicted"]);
    }
    assert_eq!(report["max_new_tokens"], 40, "the flag overrides the config");
    assert_eq!(report["results"].as_array().unwrap().len(), EXAMPLES);
    assert_eq!(metrics["examples"], EXAMPLES);
    assert_eq!(metrics["examples_with_calls"], EXAMPLES);
    assert_eq!(report["generation_errors"], 0);
    let count = |key: &str| metrics[key].as_u64().unwrap() as usize;
    assert!(count("valid_json") <= EXAMPLES);
    assert!(count("full_matches") <= count("name_matches"));
    assert!(count("full_matches") <= count("arguments_matches"));
    for result in report["results"].as_array().unwrap() {
        let new_tokens = result["new_tokens"].as_u64().unwrap();
        assert!(new_tokens >= 1 && new_tokens <= 40, "{result}");
        assert!(result["prompt_tokens"].as_u64().unwrap() > 50, "{result}");
    }
}

#[test]
fn eval_config_rejects_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eval.toml");
    std::fs::write(&path, "modle = \"x.tllm\"\n").unwrap();
    let error = format!("{:#}", EvalConfig::load(&path).unwrap_err());
    assert!(error.contains("modle"), "{error}");
    let missing = format!("{:#}", EvalConfig::load(&dir.path().join("absent.toml")).unwrap_err());
    assert!(missing.contains("absent.toml"), "{missing}");
}

#[test]
fn eval_without_model_names_the_fix() {
    let error = run(&EvalArgs::default()).unwrap_err().to_string();
    assert!(error.contains("--model"), "{error}");
}
