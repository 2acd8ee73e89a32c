//! Tests of the GGUF tokenizer conversion: llama.cpp's conformance vectors, the SmolLM2
//! tokenizer, BOS/EOS handling and rejected metadata.

mod gguf_common;

use std::str::FromStr;

use gguf_common::{shared_file, GgufBuilder};
use tinyllm_convert::gguf::{
    special_tokens, tokenizer_json_from_gguf, GgufError, GgufFile, MetaArray, MetaValue,
};
use tokenizers::Tokenizer;

fn load_tokenizer(file: &GgufFile) -> Tokenizer {
    let json = tokenizer_json_from_gguf(file).expect("conversion should succeed");
    Tokenizer::from_str(&json).expect("tokenizers should load the converted tokenizer.json")
}

fn encode(tokenizer: &Tokenizer, text: &str, add_special_tokens: bool) -> Vec<u32> {
    tokenizer
        .encode(text, add_special_tokens)
        .unwrap()
        .get_ids()
        .to_vec()
}

/// Splits a llama.cpp `.inp` file the way test-tokenizer-0 does: cases are separated by
/// `"\n__ggml_vocab_test__\n"`, so the newline before each marker is not part of the text.
fn split_cases(input: &str) -> Vec<&str> {
    const SEPARATOR: &str = "\n__ggml_vocab_test__\n";
    let mut cases = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        match rest.find(SEPARATOR) {
            Some(at) => {
                cases.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                cases.push(rest);
                break;
            }
        }
    }
    cases
}

#[test]
fn qwen2_vectors_match_llama_cpp() {
    let Some(path) = shared_file("tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tokenizer = load_tokenizer(&file);
    let input = std::fs::read_to_string(path.with_extension("gguf.inp")).unwrap();
    let output = std::fs::read_to_string(path.with_extension("gguf.out")).unwrap();

    let cases = split_cases(&input);
    let expected: Vec<Vec<u32>> = output
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(|id| id.parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(cases.len(), 46, "case count in .inp");
    assert_eq!(expected.len(), cases.len(), "one .out line per case");

    // test-tokenizer-0 tokenizes without BOS/EOS and without parsing special tokens.
    let mut failures = Vec::new();
    for (i, (text, want)) in cases.iter().zip(&expected).enumerate() {
        let got = encode(&tokenizer, text, false);
        if &got != want {
            failures.push(format!("case {i} {text:?}: got {got:?}, expected {want:?}"));
        }
    }
    println!(
        "llama.cpp qwen2 vectors: {} of {} cases match",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn qwen2_matches_hf_tokenizer_json() {
    let Some(path) = shared_file("tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf") else {
        return;
    };
    let (Some(reference_path), Some(text_path)) = (
        shared_file("tokenizers/qwen3/tokenizer.json"),
        shared_file("datasets/text/tinyshakespeare.txt"),
    ) else {
        return;
    };
    let converted = load_tokenizer(&GgufFile::open(&path).unwrap());
    let reference = Tokenizer::from_file(&reference_path).unwrap();

    // Qwen2 and Qwen3 share the base vocabulary and merges; only later added tokens differ.
    let text = std::fs::read_to_string(text_path).unwrap();
    let mut samples: Vec<&str> = text.split("\n\n").take(400).collect();
    samples.extend([
        "Numbers 1234567 and 3.14159, dates 2024-01-31.",
        "Mixed: naïve café, Ünïcödé, 日本語のテキスト, emoji 🦙🚀 and tabs\tand  spaces.",
        "  leading spaces, trailing spaces   ",
        "<|im_start|>user\nHi<|im_end|>\n",
        "Decomposed: e\u{301} A\u{30A}",
    ]);
    for sample in samples {
        assert_eq!(
            encode(&converted, sample, false),
            encode(&reference, sample, false),
            "ids differ for {sample:?}"
        );
    }
}

#[test]
fn smollm2_tokenizer_converts() {
    let Some(path) = shared_file("models/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let tokenizer = load_tokenizer(&file);
    assert_eq!(file.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    assert_eq!(tokenizer.get_vocab_size(true), 49152);

    let info = special_tokens(&file).unwrap();
    assert_eq!(info.bos, Some(1));
    assert_eq!(info.eos, Some(2));
    assert_eq!(info.pad, Some(2));
    assert_eq!(info.unk, Some(0));
    assert_eq!(info.bos_token.as_deref(), Some("<|im_start|>"));
    assert_eq!(info.eos_token.as_deref(), Some("<|im_end|>"));
    assert!(!info.add_bos, "the file sets add_bos_token = false");
    assert!(!info.add_eos);
    let template = info.chat_template.as_deref().unwrap();
    assert!(template.contains("<|im_start|>"), "{template}");

    // smollm splits every digit apart before the GPT-2 split.
    let digit_ids: Vec<u32> = "12345"
        .chars()
        .map(|c| tokenizer.token_to_id(&c.to_string()).unwrap())
        .collect();
    assert_eq!(encode(&tokenizer, "12345", false), digit_ids);
    let with_words = encode(&tokenizer, "Hello world! 123", false);
    assert_eq!(&with_words[with_words.len() - 3..], &digit_ids[..3]);

    // No BOS is added, and control tokens in the text map to their ids.
    let chat = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n";
    let ids = encode(&tokenizer, chat, true);
    assert_eq!(ids.first(), Some(&1), "{ids:?}");
    assert_eq!(
        ids.iter().filter(|&&id| id == 1 || id == 2).count(),
        2,
        "{ids:?}"
    );
    assert_eq!(tokenizer.decode(&ids, false).unwrap(), chat);
    assert_eq!(
        tokenizer.decode(&ids, true).unwrap(),
        "user\nWhat is the capital of France?\n"
    );

    for text in [
        "The capital of France is Paris.",
        "  spaced\tout\n\nlines ",
        "naïve café 日本 🦙",
        "",
    ] {
        let ids = encode(&tokenizer, text, false);
        assert_eq!(
            tokenizer.decode(&ids, false).unwrap(),
            text,
            "round trip of {text:?}"
        );
    }
}

/// Builds a tiny byte-level BPE vocabulary: `a b ab` and `1 2 12` with one merge each, and control
/// tokens `<s>` (BOS) and `</s>` (EOS).
fn tiny_vocab(pre: &str) -> GgufBuilder {
    let strings = |items: &[&str]| {
        MetaValue::Array(MetaArray::String(
            items.iter().map(|s| s.to_string()).collect(),
        ))
    };
    GgufBuilder::new()
        .meta(
            "tokenizer.ggml.model",
            MetaValue::String("gpt2".to_string()),
        )
        .meta("tokenizer.ggml.pre", MetaValue::String(pre.to_string()))
        .meta(
            "tokenizer.ggml.tokens",
            strings(&["a", "b", "ab", "<s>", "</s>", "1", "2", "12"]),
        )
        .meta(
            "tokenizer.ggml.token_type",
            MetaValue::Array(MetaArray::I32(vec![1, 1, 1, 3, 3, 1, 1, 1])),
        )
        .meta("tokenizer.ggml.merges", strings(&["a b", "1 2"]))
        .meta("tokenizer.ggml.bos_token_id", MetaValue::U32(3))
        .meta("tokenizer.ggml.eos_token_id", MetaValue::U32(4))
}

fn tiny_file(builder: GgufBuilder) -> GgufFile {
    GgufFile::from_bytes(builder.build()).unwrap()
}

#[test]
fn bos_and_eos_follow_flags() {
    let plain = load_tokenizer(&tiny_file(tiny_vocab("gpt-2")));
    assert_eq!(encode(&plain, "ab", true), [2]);

    let with_bos = tiny_vocab("gpt-2").meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
    let tokenizer = load_tokenizer(&tiny_file(with_bos));
    assert_eq!(encode(&tokenizer, "ab", true), [3, 2]);
    assert_eq!(encode(&tokenizer, "ab", false), [2]);
    let pair = tokenizer.encode(("ab", "b"), true).unwrap();
    assert_eq!(pair.get_ids(), [3, 2, 3, 1]);

    let both = tiny_vocab("gpt-2")
        .meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(true))
        .meta("tokenizer.ggml.add_eos_token", MetaValue::Bool(true));
    let tokenizer = load_tokenizer(&tiny_file(both));
    assert_eq!(encode(&tokenizer, "ab", true), [3, 2, 4]);
    assert_eq!(tokenizer.decode(&[3, 2, 4], true).unwrap(), "ab");
}

#[test]
fn llama_bpe_adds_bos_by_default() {
    let file = tiny_file(tiny_vocab("llama-bpe"));
    assert!(special_tokens(&file).unwrap().add_bos);
    assert_eq!(encode(&load_tokenizer(&file), "ab", true), [3, 2]);

    let opted_out = tiny_file(
        tiny_vocab("llama-bpe").meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(false)),
    );
    assert!(!special_tokens(&opted_out).unwrap().add_bos);
}

#[test]
fn supported_pre_tokenizers_load() {
    for pre in [
        "qwen2",
        "deepseek-r1-qwen",
        "llama-bpe",
        "llama3",
        "llama-v3",
        "smollm",
        "starcoder",
        "gpt-2",
        "default",
    ] {
        let tokenizer = load_tokenizer(&tiny_file(tiny_vocab(pre)));
        assert_eq!(encode(&tokenizer, "ab", false), [2], "pre {pre}");
        assert_eq!(
            encode(&tokenizer, "<s>ab</s>", false),
            [3, 2, 4],
            "pre {pre}"
        );
    }
    // Digit handling differs: smollm isolates digits, gpt-2 keeps runs together.
    let smollm = load_tokenizer(&tiny_file(tiny_vocab("smollm")));
    assert_eq!(encode(&smollm, "12", false), [5, 6]);
    let gpt2 = load_tokenizer(&tiny_file(tiny_vocab("gpt-2")));
    assert_eq!(encode(&gpt2, "12", false), [7]);
}

#[test]
fn missing_pre_means_default() {
    let tokenizer = load_tokenizer(&tiny_file(without(
        tiny_vocab("unused"),
        "tokenizer.ggml.pre",
    )));
    assert_eq!(encode(&tokenizer, "ab", false), [2]);
}

#[test]
fn unknown_pre_rejected() {
    let err = tokenizer_json_from_gguf(&tiny_file(tiny_vocab("mystery-bpe"))).unwrap_err();
    assert!(
        matches!(err, GgufError::UnsupportedPreTokenizer { ref pre, .. } if pre == "mystery-bpe"),
        "{err}"
    );
    assert!(err.to_string().contains("mystery-bpe"), "{err}");
    assert!(
        err.to_string().contains("qwen2"),
        "message lists the supported values: {err}"
    );
}

#[test]
fn unsupported_model_rejected() {
    let builder = with(
        tiny_vocab("default"),
        "tokenizer.ggml.model",
        MetaValue::String("llama".to_string()),
    );
    let err = tokenizer_json_from_gguf(&tiny_file(builder)).unwrap_err();
    assert!(
        matches!(err, GgufError::UnsupportedTokenizerModel { ref model } if model == "llama"),
        "{err}"
    );
}

/// Returns `builder` without the metadata entry `key`.
fn without(mut builder: GgufBuilder, key: &str) -> GgufBuilder {
    builder.metadata.retain(|(k, _)| k != key);
    builder
}

/// Returns `builder` with `key` set to `value`, replacing any earlier entry.
fn with(builder: GgufBuilder, key: &str, value: MetaValue) -> GgufBuilder {
    without(builder, key).meta(key, value)
}

#[test]
fn bad_tokenizer_metadata_rejected() {
    let no_merges = without(tiny_vocab("gpt-2"), "tokenizer.ggml.merges");
    let err = tokenizer_json_from_gguf(&tiny_file(no_merges)).unwrap_err();
    assert!(
        matches!(err, GgufError::MissingKey { ref key } if key == "tokenizer.ggml.merges"),
        "{err}"
    );

    let bool_merges = with(
        tiny_vocab("gpt-2"),
        "tokenizer.ggml.merges",
        MetaValue::Bool(true),
    );
    let err = tokenizer_json_from_gguf(&tiny_file(bool_merges)).unwrap_err();
    assert!(
        matches!(err, GgufError::WrongType { ref key, .. } if key == "tokenizer.ggml.merges"),
        "{err}"
    );

    let spaceless_merge = MetaValue::Array(MetaArray::String(vec!["ab".to_string()]));
    let spaceless = with(
        tiny_vocab("gpt-2"),
        "tokenizer.ggml.merges",
        spaceless_merge,
    );
    let err = tokenizer_json_from_gguf(&tiny_file(spaceless)).unwrap_err();
    assert!(matches!(err, GgufError::InvalidTokenizer { .. }), "{err}");
    assert!(err.to_string().contains("\"ab\""), "{err}");

    let out_of_range = with(
        tiny_vocab("gpt-2"),
        "tokenizer.ggml.eos_token_id",
        MetaValue::U32(99),
    );
    let err = special_tokens(&tiny_file(out_of_range)).unwrap_err();
    assert!(
        matches!(err, GgufError::InvalidTokenizer { ref key, .. } if key == "tokenizer.ggml.eos_token_id"),
        "{err}"
    );
    assert!(err.to_string().contains("99"), "{err}");

    let two_types = MetaValue::Array(MetaArray::I32(vec![1, 1]));
    let short_types = with(tiny_vocab("gpt-2"), "tokenizer.ggml.token_type", two_types);
    let err = tokenizer_json_from_gguf(&tiny_file(short_types)).unwrap_err();
    assert!(
        matches!(err, GgufError::InvalidTokenizer { ref key, .. } if key == "tokenizer.ggml.token_type"),
        "{err}"
    );

    let bos_flag = with(
        tiny_vocab("gpt-2"),
        "tokenizer.ggml.add_bos_token",
        MetaValue::Bool(true),
    );
    let bos_without_id = without(bos_flag, "tokenizer.ggml.bos_token_id");
    let err = tokenizer_json_from_gguf(&tiny_file(bos_without_id)).unwrap_err();
    assert!(
        matches!(err, GgufError::InvalidTokenizer { ref key, .. } if key == "tokenizer.ggml.bos_token_id"),
        "{err}"
    );
}
