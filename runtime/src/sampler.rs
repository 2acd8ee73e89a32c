//! Token sampling: greedy, temperature, top-k, top-p, min-p and repetition penalty.

use alloc::vec::Vec;

/// Sampling parameters. The defaults sample at temperature 0.8 with top-k 40, top-p 0.95
/// and min-p 0.05, the common defaults of llama.cpp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerParams {
    /// Divisor of the logits; 0 or less selects greedy decoding (the arg max).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probabilities sum to at least `top_p`; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p` times the top token's; 0 keeps all.
    pub min_p: f32,
    /// Penalty on tokens among the last `repeat_last_n`: positive logits are divided by it,
    /// negative ones multiplied (the CTRL rule, as in transformers); 1 disables it.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    /// Seed of the random generator; the same seed and inputs give the same tokens.
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

impl SamplerParams {
    /// Parameters for greedy decoding.
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, ..Self::default() }
    }
}

/// A seeded sampler. It holds the random state and reusable buffers.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    rng: SplitMix64,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// Creates a sampler with `params`.
    pub fn new(params: SamplerParams) -> Sampler {
        Sampler { params, rng: SplitMix64(params.seed), candidates: Vec::new() }
    }

    /// The parameters.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Picks the next token from `logits`, given the tokens seen so far in `history`.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let p = self.params;
        self.candidates.clear();
        self.candidates.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if p.repeat_penalty != 1.0 && p.repeat_last_n > 0 {
            apply_repeat_penalty(&mut self.candidates, history, p.repeat_penalty, p.repeat_last_n);
        }
        if self.candidates.is_empty() {
            return 0;
        }
        if p.temperature <= 0.0 {
            return argmax(&self.candidates);
        }
        // Most likely first; ties broken by the lower id so that results are deterministic.
        self.candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if p.top_k > 0 && p.top_k < self.candidates.len() {
            self.candidates.truncate(p.top_k);
        }
        let probabilities = softmax_scaled(&self.candidates, p.temperature);
        let mut keep = probabilities.len();
        if p.top_p < 1.0 {
            let mut cumulative = 0.0;
            for (i, &prob) in probabilities.iter().enumerate() {
                cumulative += prob;
                if cumulative >= p.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if p.min_p > 0.0 {
            let threshold = probabilities[0] * p.min_p;
            keep = keep.min(probabilities.iter().take_while(|&&prob| prob >= threshold).count().max(1));
        }
        let total: f32 = probabilities[..keep].iter().sum();
        let mut target = self.rng.next_f32() * total;
        for (i, &prob) in probabilities[..keep].iter().enumerate() {
            target -= prob;
            if target <= 0.0 {
                return self.candidates[i].0;
            }
        }
        self.candidates[keep - 1].0
    }
}

/// The id of the largest logit; the lowest id wins a tie, as `torch.argmax` does.
pub fn argmax(candidates: &[(u32, f32)]) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for &(id, logit) in candidates {
        if logit > best.1 {
            best = (id, logit);
        }
    }
    best.0
}

fn apply_repeat_penalty(candidates: &mut [(u32, f32)], history: &[u32], penalty: f32, last_n: usize) {
    let recent = &history[history.len().saturating_sub(last_n)..];
    let mut seen: Vec<u32> = recent.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        if let Some(candidate) = candidates.get_mut(id as usize) {
            candidate.1 = if candidate.1 > 0.0 { candidate.1 / penalty } else { candidate.1 * penalty };
        }
    }
}

/// Softmax of `logits / temperature` over candidates sorted most likely first.
fn softmax_scaled(candidates: &[(u32, f32)], temperature: f32) -> Vec<f32> {
    let max = candidates.first().map_or(0.0, |c| c.1);
    let mut probabilities: Vec<f32> = candidates.iter().map(|c| libm::expf((c.1 - max) / temperature)).collect();
    let sum: f32 = probabilities.iter().sum();
    for prob in probabilities.iter_mut() {
        *prob /= sum;
    }
    probabilities
}

/// SplitMix64: a small, fast, well-distributed generator; enough for sampling.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}
