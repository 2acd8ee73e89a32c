use std::str::FromStr;
use tinyllm_convert::gguf::*;
#[test]
fn probe() {
    let f = GgufFile::open(std::path::Path::new("/work/shared/models/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let t = tokenizers::Tokenizer::from_str(&tokenizer_json_from_gguf(&f).unwrap()).unwrap();
    for s in ["Hello world! 123", "\n", "Café déjà vu.", "  multiple   spaces", "Hello, we can use"] {
        println!("{s:?} -> {:?}", t.encode(s, false).unwrap().get_ids());
    }
    let mut bytes = std::fs::read("/work/shared/tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf").unwrap();
    let needle = b"tokenizer.ggml.pre\x08\0\0\0\x05\0\0\0\0\0\0\0qwen2";
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len() - 5;
    bytes[at..at + 5].copy_from_slice(b"gpt-2");
    let f = GgufFile::from_bytes(bytes).unwrap();
    let t = tokenizers::Tokenizer::from_str(&tokenizer_json_from_gguf(&f).unwrap()).unwrap();
    let inp = std::fs::read_to_string("/work/shared/tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf.inp").unwrap();
    let out = std::fs::read_to_string("/work/shared/tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf.out").unwrap();
    let cases: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let mut bad = 0;
    for (c, o) in cases.iter().zip(out.lines()) {
        let want: Vec<u32> = o.split_whitespace().map(|x| x.parse().unwrap()).collect();
        if t.encode(*c, false).unwrap().get_ids() != want { bad += 1; }
    }
    println!("with gpt-2 pre: {bad} mismatches");
}
