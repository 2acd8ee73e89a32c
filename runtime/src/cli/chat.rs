//! `tinyllm chat`: an interactive conversation on standard input and output.

use std::io::{BufRead, Write};

use anyhow::{bail, Result};
use clap::Args;
use tinyllm::{ChatMessage, Model, Sampler, Session, Tokenizer};

use super::generate::generate;
use super::{GenerationArgs, ModelArg};

/// Options of `tinyllm chat`.
#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArg,
    /// System message that opens the conversation.
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    generation: GenerationArgs,
}

/// Runs `tinyllm chat`. Each input line is one user message; `/reset` starts over and
/// `/exit` or end of input quits.
pub fn chat(args: ChatArgs) -> Result<()> {
    let model = Model::open(&args.model.model)?;
    let tokenizer = Tokenizer::from_model(&model)?;
    if !tokenizer.has_chat_template() {
        bail!("{} has no chat template; use `tinyllm run` instead", args.model.model.display());
    }
    let mut session = Session::with_kv_type(&model, Some(args.generation.context), args.generation.kv_type);
    session.set_threads(args.generation.thread_count());
    let mut sampler = Sampler::new(args.generation.sampler_params());
    let opening: Vec<ChatMessage> = args.system.iter().map(|s| ChatMessage::new("system", s)).collect();
    let mut messages = opening.clone();

    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    eprintln!("chatting with {}; /reset starts over, /exit quits", args.model.model.display());
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = opening.clone();
                session.reset();
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", line));
        let mut tokens = tokenizer.encode(&tokenizer.apply_chat_template(&messages, true)?, false)?;
        if tokens.len() >= session.context() {
            // Drop the earlier turns and reply to this message alone, if it fits.
            eprintln!("the conversation no longer fits in the context of {} tokens; starting over from this message", session.context());
            messages = opening.clone();
            messages.push(ChatMessage::new("user", line));
            session.reset();
            tokens = tokenizer.encode(&tokenizer.apply_chat_template(&messages, true)?, false)?;
            if tokens.len() >= session.context() {
                eprintln!(
                    "the message is {} tokens long with the chat template, more than the context of {} tokens; raise --context or send a shorter message",
                    tokens.len(),
                    session.context()
                );
                messages = opening.clone();
                continue;
            }
        }
        // Reuse the KV cache for the prefix the new rendering shares with what was evaluated.
        let shared = session.tokens().iter().zip(&tokens).take_while(|(a, b)| a == b).count();
        let shared = shared.min(tokens.len() - 1);
        session.truncate(shared);
        let budget = args.generation.max_tokens.min(session.context() - tokens.len());
        let (reply, stats) = generate(&mut session, &tokenizer, &mut sampler, &tokens[shared..], budget, &mut stdout)?;
        writeln!(stdout)?;
        let cut_by_context = budget < args.generation.max_tokens && stats.generated_tokens == budget;
        if !stats.stopped_at_eos && cut_by_context {
            eprintln!("(the reply stopped at the end of the context of {} tokens; raise --context for longer replies)", session.context());
        }
        if args.generation.verbose {
            stats.report();
        }
        messages.push(ChatMessage::new("assistant", tokenizer.decode(&reply, true)?));
    }
    Ok(())
}
