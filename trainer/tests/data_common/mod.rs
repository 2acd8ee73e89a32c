//! Helpers shared by the data and eval tests: the shared inputs folder and SmolLM2's tokenizer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tinyllm::format::TokenizerInfo;
use tinyllm::Tokenizer;
use tinyllm_convert::gguf::{special_tokens, tokenizer_json_from_gguf, GgufFile};
use tinyllm_train::data::ChatTemplate;

/// The GGUF file of SmolLM2-135M-Instruct, relative to the shared folder.
pub const SMOLLM2_GGUF: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The shared inputs folder (`TINYLLM_SHARED`, default `../shared` from the workspace root),
/// or `None` after printing why the calling test skips.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TINYLLM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping {test}: shared inputs not found at {} (set TINYLLM_SHARED)", dir.display());
        None
    }
}

/// A file under the shared folder, or `None` after printing why the calling test skips.
pub fn shared_file(test: &str, relative: &str) -> Option<PathBuf> {
    let path = shared_dir(test)?.join(relative);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping {test}: {} not found", path.display());
        None
    }
}

/// SmolLM2's tokenizer and chat template, read from the shared GGUF file.
pub fn smollm2_tokenizer(test: &str) -> Option<(Tokenizer, ChatTemplate)> {
    let path = shared_file(test, SMOLLM2_GGUF)?;
    let file = GgufFile::open(&path).expect("open the SmolLM2 GGUF");
    let json = tokenizer_json_from_gguf(&file).expect("tokenizer.json from the GGUF");
    let chat = special_tokens(&file).expect("special tokens from the GGUF");
    let info = TokenizerInfo {
        chat_template: chat.chat_template.clone(),
        bos_token: chat.bos_token.clone(),
        eos_token: chat.eos_token.clone(),
        add_bos_token: chat.add_bos,
    };
    let template = ChatTemplate::from_info(&info).expect("SmolLM2 has a chat template");
    let tokenizer = Tokenizer::from_json(json.as_bytes(), info).expect("load the tokenizer");
    Some((tokenizer, template))
}
