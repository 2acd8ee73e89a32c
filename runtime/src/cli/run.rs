//! `tinyllm run`: one prompt, streamed output, speed on standard error.

use anyhow::{bail, Context, Result};
use clap::Args;
use tinyllm::{ChatMessage, Model, Sampler, Session, Tokenizer};

use super::generate::generate;
use super::{GenerationArgs, ModelArg};

/// Options of `tinyllm run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt text.
    #[arg(short, long)]
    prompt: String,
    /// Wrap the prompt in the model's chat template as a user message.
    #[arg(long)]
    chat: bool,
    /// System message, used with --chat.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[command(flatten)]
    generation: GenerationArgs,
}

/// Runs `tinyllm run`.
pub fn run(args: RunArgs) -> Result<()> {
    let model = Model::open(&args.model.model)?;
    let tokenizer = Tokenizer::from_model(&model)?;
    let tokens = if args.chat {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new("system", system));
        }
        messages.push(ChatMessage::new("user", &args.prompt));
        let text = tokenizer.apply_chat_template(&messages, true)?;
        tokenizer.encode(&text, false)?
    } else {
        tokenizer.encode(&args.prompt, true)?
    };
    if tokens.is_empty() {
        bail!("the prompt encodes to no tokens; give a non-empty prompt");
    }
    let mut session = Session::with_kv_type(&model, Some(args.generation.context), args.generation.kv_type);
    session.set_threads(args.generation.thread_count());
    if tokens.len() > session.context() {
        bail!(
            "the prompt has {} tokens but the context holds {}; raise --context (the model allows up to {}) or shorten the prompt",
            tokens.len(),
            session.context(),
            model.metadata().max_context
        );
    }
    if args.generation.verbose {
        eprintln!(
            "model: {} ({}, {} layers, {:.1} M parameters), context {}, {} threads, prompt {} tokens",
            args.model.model.display(),
            model.metadata().architecture.name(),
            model.metadata().layers.len(),
            model.parameter_count() as f64 / 1e6,
            session.context(),
            session.threads(),
            tokens.len()
        );
        eprintln!("kernels: {}", super::kernels_line());
    }
    let mut sampler = Sampler::new(args.generation.sampler_params());
    let mut stdout = std::io::stdout().lock();
    let (_, stats) = generate(&mut session, &tokenizer, &mut sampler, &tokens, args.generation.max_tokens, &mut stdout)
        .context("generation failed")?;
    println!();
    if !stats.stopped_at_eos && session.position() == session.context() {
        eprintln!("(generation stopped at the end of the context of {} tokens; raise --context for longer output)", session.context());
    }
    stats.report();
    Ok(())
}
