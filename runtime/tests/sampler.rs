//! Sampling: greedy is the arg max, seeds reproduce, and each filter keeps what it should.

use tinyllm::{Sampler, SamplerParams};

fn logits() -> Vec<f32> {
    vec![1.0, 3.0, 2.5, -1.0, 3.0, 0.0, 2.9]
}

fn counts(params: SamplerParams, draws: usize) -> Vec<usize> {
    let mut sampler = Sampler::new(params);
    let mut counts = vec![0; logits().len()];
    for _ in 0..draws {
        counts[sampler.sample(&logits(), &[]) as usize] += 1;
    }
    counts
}

#[test]
fn greedy_takes_first_maximum() {
    let mut sampler = Sampler::new(SamplerParams::greedy());
    assert_eq!(sampler.sample(&logits(), &[]), 1);
}

#[test]
fn same_seed_same_tokens() {
    let params = SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 42, ..SamplerParams::default() };
    let draw = |params| {
        let mut sampler = Sampler::new(params);
        (0..50).map(|_| sampler.sample(&logits(), &[])).collect::<Vec<_>>()
    };
    assert_eq!(draw(params), draw(params));
    assert_ne!(draw(params), draw(SamplerParams { seed: 43, ..params }));
}

#[test]
fn top_k_keeps_k_tokens() {
    let params = SamplerParams { temperature: 5.0, top_k: 2, top_p: 1.0, min_p: 0.0, seed: 1, ..SamplerParams::default() };
    let counts = counts(params, 2000);
    assert!(counts[1] > 0 && counts[4] > 0, "{counts:?}");
    assert_eq!(counts[1] + counts[4], 2000, "{counts:?}");
}

#[test]
fn top_p_keeps_the_nucleus() {
    // At temperature 1 the probabilities are about 0.05, 0.25, 0.15, 0.01, 0.25, 0.02, 0.23.
    // The smallest set reaching 0.5 is the two tokens with logit 3.0.
    let params = SamplerParams { temperature: 1.0, top_k: 0, top_p: 0.5, min_p: 0.0, seed: 2, ..SamplerParams::default() };
    let counts = counts(params, 2000);
    assert_eq!(counts[1] + counts[4], 2000, "{counts:?}");
}

#[test]
fn min_p_drops_unlikely_tokens() {
    // Relative to the top probability: exp(2.5 - 3) = 0.61, exp(1 - 3) = 0.14.
    let params = SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.5, seed: 3, ..SamplerParams::default() };
    let counts = counts(params, 3000);
    assert_eq!(counts[0] + counts[3] + counts[5], 0, "{counts:?}");
    assert!(counts[2] > 0 && counts[6] > 0, "{counts:?}");
}

#[test]
fn frequencies_follow_softmax() {
    let params = SamplerParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 4, ..SamplerParams::default() };
    // Miri runs the sampler about a thousand times slower; the bound below widens to match.
    let draws = if cfg!(miri) { 2_000 } else { 40_000 };
    let counts = counts(params, draws);
    let weights: Vec<f64> = logits().iter().map(|&l| (l as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    for (i, (&count, weight)) in counts.iter().zip(&weights).enumerate() {
        let expected = weight / total;
        let observed = count as f64 / draws as f64;
        // Five standard deviations of a binomial proportion.
        let bound = 5.0 * (expected * (1.0 - expected) / draws as f64).sqrt() + 1e-4;
        assert!((observed - expected).abs() < bound, "token {i}: observed {observed}, expected {expected}");
    }
}

#[test]
fn repeat_penalty_changes_greedy_choice() {
    let params = SamplerParams { repeat_penalty: 2.0, ..SamplerParams::greedy() };
    let mut sampler = Sampler::new(params);
    // Tokens 1 and 4 were just used: 3.0 / 2 = 1.5, so 2.9 (token 6) wins.
    assert_eq!(sampler.sample(&logits(), &[1, 4]), 6);
    // Outside the window of the last 64 tokens the penalty no longer applies.
    let mut history = vec![1, 4];
    history.extend(std::iter::repeat_n(0, 64));
    assert_eq!(sampler.sample(&logits(), &history), 1);
}

#[test]
fn negative_logits_are_multiplied() {
    let params = SamplerParams { repeat_penalty: 2.0, ..SamplerParams::greedy() };
    let mut sampler = Sampler::new(params);
    // -0.1 * 2 = -0.2 < -0.15, so the untouched token 1 wins.
    assert_eq!(sampler.sample(&[-0.1, -0.15], &[0]), 1);
}

#[test]
fn empty_logits_do_not_panic() {
    let mut sampler = Sampler::new(SamplerParams::default());
    assert_eq!(sampler.sample(&[], &[]), 0);
}
