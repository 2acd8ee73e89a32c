//! The generation loop shared by `run` and `chat`: sample, stream text, stop at EOS.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use tinyllm::{Sampler, Session, TextStream, Tokenizer};

/// Timings and counts of one generation.
#[derive(Debug, Default)]
pub struct GenerationStats {
    /// Tokens evaluated as the prompt.
    pub prompt_tokens: usize,
    /// Time to evaluate the prompt.
    pub prompt_time: Duration,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time spent generating after the prompt.
    pub generation_time: Duration,
    /// Whether generation stopped at an end-of-sequence token.
    pub stopped_at_eos: bool,
}

impl GenerationStats {
    /// Prints prompt and generation speed to standard error.
    pub fn report(&self) {
        let rate = |tokens: usize, time: Duration| tokens as f64 / time.as_secs_f64().max(1e-9);
        eprintln!(
            "\nprompt: {} tokens in {:.1} ms ({:.1} tok/s); generation: {} tokens in {:.1} ms ({:.1} tok/s)",
            self.prompt_tokens,
            self.prompt_time.as_secs_f64() * 1e3,
            rate(self.prompt_tokens, self.prompt_time),
            self.generated_tokens,
            self.generation_time.as_secs_f64() * 1e3,
            rate(self.generated_tokens, self.generation_time),
        );
    }
}

/// Evaluates `new_tokens` after what `session` holds, then samples up to `max_tokens` tokens,
/// writing their text to `out` as it completes. Returns the generated ids and the timings.
pub fn generate(
    session: &mut Session<'_>,
    tokenizer: &Tokenizer,
    sampler: &mut Sampler,
    new_tokens: &[u32],
    max_tokens: usize,
    out: &mut dyn Write,
) -> Result<(Vec<u32>, GenerationStats)> {
    let eos = &session.model().metadata().eos_token_ids;
    let mut stats = GenerationStats { prompt_tokens: new_tokens.len(), ..Default::default() };
    let start = Instant::now();
    session.eval(new_tokens)?;
    stats.prompt_time = start.elapsed();

    let mut stream = TextStream::new();
    let mut generated = Vec::new();
    let start = Instant::now();
    while generated.len() < max_tokens {
        let token = sampler.sample(session.logits(), session.tokens());
        if eos.contains(&token) {
            stats.stopped_at_eos = true;
            break;
        }
        generated.push(token);
        let piece = stream.push(tokenizer, token)?;
        out.write_all(piece.as_bytes())?;
        out.flush()?;
        if generated.len() == max_tokens || session.position() == session.context() {
            break;
        }
        session.eval(&[token])?;
    }
    stats.generation_time = start.elapsed();
    stats.generated_tokens = generated.len();
    Ok((generated, stats))
}
