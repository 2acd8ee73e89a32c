//! Bad converter inputs get errors that name the file, the field and the value, and a failed
//! conversion leaves no output behind.

use std::fs;
use std::path::{Path, PathBuf};

use tinyllm_convert::{convert, ConvertError, ConvertOptions};
use tinyllm_tests::fixtures_dir;

/// Copies a fixture model directory into a fresh temporary directory.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join(name);
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixtures_dir().join("models").join(name)).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (temp, dir)
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    edit(config.as_object_mut().unwrap());
    fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
}

fn convert_err(input: &Path, output: &Path) -> ConvertError {
    let error = convert(input, output, &ConvertOptions::default()).expect_err("conversion fails");
    assert!(!output.exists(), "a failed conversion wrote {}", output.display());
    let leftovers: Vec<_> = fs::read_dir(output.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    error
}

#[test]
fn config_missing_field() {
    let (temp, dir) = copy_fixture("llama-gqa");
    edit_config(&dir, |c| {
        c.remove("hidden_size");
    });
    let error = convert_err(&dir, &temp.path().join("out.tllm"));
    match &error {
        ConvertError::MissingField { path, field } => {
            assert_eq!(field, "hidden_size");
            assert!(path.ends_with("config.json"));
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    assert!(error.to_string().contains("config.json: missing field \"hidden_size\""), "{error}");
}

#[test]
fn config_field_of_wrong_type() {
    let (temp, dir) = copy_fixture("llama-gqa");
    edit_config(&dir, |c| {
        c.insert("num_hidden_layers".into(), "two".into());
    });
    match convert_err(&dir, &temp.path().join("out.tllm")) {
        ConvertError::InvalidField { field, value, .. } => {
            assert_eq!(field, "num_hidden_layers");
            assert_eq!(value, "\"two\"");
        }
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn config_unknown_architecture() {
    let (temp, dir) = copy_fixture("llama-gqa");
    edit_config(&dir, |c| {
        c.insert("model_type".into(), "gpt_neox".into());
    });
    match convert_err(&dir, &temp.path().join("out.tllm")) {
        ConvertError::UnknownArchitecture { name, .. } => assert_eq!(name, "gpt_neox"),
        other => panic!("expected UnknownArchitecture, got {other:?}"),
    }
}

#[test]
fn config_not_json() {
    let (temp, dir) = copy_fixture("qwen2");
    fs::write(dir.join("config.json"), "{\"model_type\": \"qwen2\",").unwrap();
    match convert_err(&dir, &temp.path().join("out.tllm")) {
        ConvertError::InvalidJson { path, message } => {
            assert!(path.ends_with("config.json"));
            assert!(message.contains("line 1"), "{message}");
        }
        other => panic!("expected InvalidJson, got {other:?}"),
    }
}

#[test]
fn safetensors_header_not_json() {
    let (temp, dir) = copy_fixture("qwen3");
    let path = dir.join("model.safetensors");
    let mut bytes = fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8..8 + header_len].fill(b'x');
    fs::write(&path, &bytes).unwrap();
    match convert_err(&dir, &temp.path().join("out.tllm")) {
        ConvertError::Safetensors { path, message } => {
            assert!(path.ends_with("model.safetensors"));
            assert!(message.contains("JSON"), "{message}");
        }
        other => panic!("expected Safetensors, got {other:?}"),
    }
}

#[test]
fn safetensors_missing_tensor() {
    let (temp, dir) = copy_fixture("llama-gqa");
    // Declaring an extra layer makes the weights of layer 2 missing.
    edit_config(&dir, |c| {
        c.insert("num_hidden_layers".into(), 3.into());
    });
    match convert_err(&dir, &temp.path().join("out.tllm")) {
        ConvertError::Model { source, .. } => {
            assert_eq!(source.kind(), &tinyllm::ErrorKind::MissingTensor { name: "layers.2.attn_norm".into() });
        }
        other => panic!("expected Model, got {other:?}"),
    }
}

#[test]
fn failed_conversion_keeps_existing_output() {
    let (temp, dir) = copy_fixture("llama-gqa");
    let output = temp.path().join("out.tllm");
    fs::write(&output, b"previous contents").unwrap();
    edit_config(&dir, |c| {
        c.insert("num_hidden_layers".into(), 3.into());
    });
    assert!(convert(&dir, &output, &ConvertOptions::default()).is_err());
    assert_eq!(fs::read(&output).unwrap(), b"previous contents");
}

/// A minimal GGUF v3 file: the metadata a Llama model needs and one tensor of `ggml_type`.
fn gguf_with_tensor_type(ggml_type: u32) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes()); // tensors
    out.extend_from_slice(&1u64.to_le_bytes()); // metadata entries
    string(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes()); // string
    string(&mut out, "llama");
    string(&mut out, "token_embd.weight");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&256u64.to_le_bytes());
    out.extend_from_slice(&4u64.to_le_bytes());
    out.extend_from_slice(&ggml_type.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    while out.len() % 32 != 0 {
        out.push(0);
    }
    out.extend(std::iter::repeat_n(0u8, 256 * 4 * 4));
    out
}

#[test]
fn gguf_unsupported_tensor_type() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("model.gguf");
    // Type 14 is Q6_K, a k-quant the converter does not read yet.
    fs::write(&input, gguf_with_tensor_type(14)).unwrap();
    let error = convert_err(&input, &temp.path().join("out.tllm"));
    let message = error.to_string();
    assert!(message.contains("token_embd.weight"), "{message}");
    assert!(message.contains("Q6_K"), "{message}");
}

#[test]
fn input_neither_directory_nor_gguf() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("model.bin");
    fs::write(&input, b"PK\x03\x04 not a model").unwrap();
    match convert_err(&input, &temp.path().join("out.tllm")) {
        ConvertError::InvalidField { field, .. } => assert_eq!(field, "magic"),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn override_matching_no_tensor() {
    let (temp, dir) = copy_fixture("llama-gqa");
    let output = temp.path().join("out.tllm");
    let mut options = ConvertOptions::default();
    options.recipe.overrides.push(tinyllm_convert::recipe::Override::parse("nosuch.*=q8_0").unwrap());
    let error = convert(&dir, &output, &options).expect_err("an override that matches nothing is an error");
    let message = error.to_string();
    assert!(message.contains("nosuch.*"), "the error names the pattern: {message}");
    assert!(message.contains("matches a tensor name"), "the error says what is expected: {message}");
    assert!(!output.exists(), "a refused conversion wrote {}", output.display());
}

#[test]
fn output_folder_missing() {
    let (temp, dir) = copy_fixture("llama-gqa");
    let output = temp.path().join("no-such-folder").join("out.tllm");
    let message = convert(&dir, &output, &ConvertOptions::default()).expect_err("a missing output folder is an error").to_string();
    assert!(message.contains("no-such-folder"), "the error names the folder: {message}");
    assert!(message.contains("create it first"), "the error gives the fix: {message}");
}
