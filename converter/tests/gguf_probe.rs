use tinyllm_convert::gguf::*;
#[test]
fn probe() {
    for p in ["/work/shared/models/SmolLM2-135M-Instruct.Q4_1.gguf", "/work/shared/tokenizers/llama.cpp-vectors/ggml-vocab-qwen2.gguf"] {
        let f = GgufFile::open(std::path::Path::new(p)).unwrap();
        println!("{p}: {:?}", f);
        for (k, v) in f.metadata() { println!("  {k}: {v}"); 
            if let MetaValue::Array(a) = v { if let MetaArray::String(s) = a { println!("     first {:?} last {:?}", &s[..3.min(s.len())], s.last()); }
              if let Some(ints) = a.to_integers() { let mut h = std::collections::BTreeMap::new(); for i in &ints { *h.entry(*i).or_insert(0)+=1; } println!("     hist {:?}", h); } } }
        let mut counts = std::collections::BTreeMap::new();
        for t in f.tensors() { *counts.entry(t.ggml_type.name()).or_insert(0) += 1; }
        println!("  tensors {} {:?}", f.tensors().len(), counts);
        for t in f.tensors().iter().take(5) { println!("  {:?}", t); }
        let toks = f.get_str_array("tokenizer.ggml.tokens").unwrap();
        let tt = f.get_i64_array("tokenizer.ggml.token_type").unwrap();
        for (i, t) in tt.iter().enumerate() { if *t != 1 { println!("   type {t} id {i} {:?}", toks[i]); if i > 49200 && i < 151600 {break;} } }
        println!("{:?}", special_tokens(&f).unwrap());
    }
}
