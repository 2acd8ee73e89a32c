//! Chat template rendering with minijinja, compatible with the Jinja templates of Hugging Face
//! `tokenizer_config.json` files.

use std::string::String;

use crate::error::{Error, ErrorKind, Result};
use crate::format::TokenizerInfo;
use crate::tokenizer::ChatMessage;

fn template_error(error: minijinja::Error) -> Error {
    let mut message = format!("chat template failed: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    ErrorKind::Tokenizer { message }.into()
}

/// Template instructions allowed for any conversation.
const TEMPLATE_FUEL_BASE: u64 = 1_000_000;
/// Extra template instructions allowed per message.
const TEMPLATE_FUEL_PER_MESSAGE: u64 = 100_000;

/// Renders `template` for `messages`. The template sees `messages`, `add_generation_prompt`,
/// `bos_token`, `eos_token` and a `raise_exception` function, as in transformers, and Python
/// string methods (`strip`, `startswith`, ...) through minijinja's compatibility layer.
pub fn render(template: &str, messages: &[ChatMessage], add_generation_prompt: bool, info: &TokenizerInfo) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // A template comes from the model file, so its work is bounded: real templates spend a few
    // hundred instructions per message, far below this budget; a loop over a huge range fails
    // with an error instead of running for hours.
    env.set_fuel(Some(TEMPLATE_FUEL_BASE + TEMPLATE_FUEL_PER_MESSAGE * messages.len() as u64));
    env.add_function("raise_exception", |message: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
    });
    env.add_template("chat", template).map_err(template_error)?;
    let tmpl = env.get_template("chat").map_err(template_error)?;
    let context = minijinja::context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => info.bos_token.clone().unwrap_or_default(),
        eos_token => info.eos_token.clone().unwrap_or_default(),
    };
    tmpl.render(context).map_err(template_error)
}
