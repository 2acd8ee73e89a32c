//! Greedy generation of an assistant reply with the tinyllm runtime on a `.tllm` model.

use serde::Serialize;
use tinyllm::{Model, Sampler, SamplerParams, Session, Tokenizer};

use crate::data::{ChatTemplate, Conversation, DataError};

/// Texts of tokens that end generation when the vocabulary has them, besides EOS.
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"];

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model wrote an end-of-sequence or end-of-turn token.
    EndOfTurn,
    /// The max new tokens limit was reached.
    MaxTokens,
    /// The context is full.
    ContextFull,
}

/// One generated reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// The reply's text, without the stop token.
    pub text: String,
    /// Tokens of the rendered prompt.
    pub prompt_tokens: usize,
    /// Tokens generated, the stop token included.
    pub new_tokens: usize,
    /// Why generation stopped.
    pub stop: StopReason,
}

/// Generation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Max tokens generated per reply.
    pub max_new_tokens: usize,
    /// Context length; `None` selects the runtime's default, capped by the model.
    pub context: Option<usize>,
    /// Threads of the matrix products; `None` uses one per physical core.
    pub threads: Option<usize>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_new_tokens: 256, context: None, threads: None }
    }
}

/// A model, its tokenizer and chat template, and a session reused across prompts.
pub struct Generator<'m> {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    session: Session<'m>,
    stop_ids: Vec<u32>,
    options: GenerateOptions,
}

impl<'m> Generator<'m> {
    /// Prepares generation with `model`, whose file must contain a tokenizer and a chat template.
    pub fn new(model: &'m Model<'m>, options: GenerateOptions) -> Result<Generator<'m>, DataError> {
        let tokenizer = Tokenizer::from_model(model)?;
        let template = ChatTemplate::from_model(model)?;
        let info = &model.metadata().tokenizer;
        let mut stop_ids: Vec<u32> = END_OF_TURN_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        if let Some(eos) = info.eos_token.as_deref().and_then(|t| tokenizer.token_to_id(t)) {
            stop_ids.push(eos);
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let threads = options.threads.unwrap_or_else(tinyllm::threads::physical_cores).max(1);
        let session = Session::with_threads(model, options.context, threads);
        Ok(Generator { tokenizer, template, session, stop_ids, options })
    }

    /// The chat template used to render prompts.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids that end generation.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Generates greedily from a rendered prompt.
    pub fn generate_text(&mut self, prompt: &str) -> Result<Generation, DataError> {
        let prompt_ids = self.tokenizer.encode(prompt, false)?;
        if prompt_ids.is_empty() {
            return Err(DataError::Invalid("the rendered prompt is empty".into()));
        }
        if prompt_ids.len() >= self.session.context() {
            return Err(DataError::Invalid(format!(
                "the prompt has {} tokens but the context has room for {}; raise the context or shorten the prompt",
                prompt_ids.len(),
                self.session.context()
            )));
        }
        // Prompts of one data set usually share a long prefix (the system message with the
        // tools), so the KV cache of the previous prompt is kept up to the first differing
        // token. At least one token is evaluated, which produces the logits to sample from.
        let shared = self.session.tokens().iter().zip(&prompt_ids).take_while(|(a, b)| a == b).count().min(prompt_ids.len() - 1);
        self.session.truncate(shared);
        self.session.eval(&prompt_ids[shared..])?;
        let mut sampler = Sampler::new(SamplerParams::greedy());
        let mut generated = Vec::new();
        let stop = loop {
            if generated.len() >= self.options.max_new_tokens {
                break StopReason::MaxTokens;
            }
            let next = sampler.sample(self.session.logits(), self.session.tokens());
            generated.push(next);
            if self.stop_ids.contains(&next) {
                break StopReason::EndOfTurn;
            }
            if self.session.position() >= self.session.context() {
                break StopReason::ContextFull;
            }
            self.session.eval(&[next])?;
        };
        let text_ids: &[u32] = if stop == StopReason::EndOfTurn { &generated[..generated.len() - 1] } else { &generated };
        let text = self.tokenizer.decode(text_ids, false)?;
        Ok(Generation { text, prompt_tokens: prompt_ids.len(), new_tokens: generated.len(), stop })
    }

    /// Generates the assistant reply to a conversation: renders it without its final
    /// assistant message and with the generation prompt, then decodes greedily.
    pub fn generate(&mut self, conversation: &Conversation) -> Result<Generation, DataError> {
        let prompt = self.template.render_prompt(conversation)?;
        self.generate_text(&prompt)
    }
}
