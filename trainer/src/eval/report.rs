//! Scoring generated replies against a data set and collecting the report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bfcl_match::{self, BfclOutcome};
use super::generate::{Generation, Generator, StopReason};
use super::metrics::{score_calls, summarize, CallScores, Metrics};
use super::parse::parse_reply;
use crate::data::{Conversation, FunctionCall};

/// The result of one example.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleResult {
    /// The conversation's id, or its index in the data file.
    pub id: String,
    /// The generated reply.
    pub reply: String,
    /// The expected calls: those of the final assistant message.
    pub expected: Vec<FunctionCall>,
    /// The calls parsed from the reply.
    pub predicted: Vec<FunctionCall>,
    /// Why call candidates in the reply were rejected.
    pub parse_errors: Vec<String>,
    /// The call-level scores.
    pub scores: CallScores,
    /// BFCL category, for conversations with a `bfcl` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// BFCL's AST check, for conversations with a `bfcl` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfcl: Option<BfclOutcome>,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub new_tokens: usize,
    /// Why generation stopped; absent when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopReason>,
    /// Why generation failed, when it did; the example then scores as an empty reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// BFCL AST accuracy of one category.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CategoryAccuracy {
    /// Questions checked.
    pub questions: usize,
    /// Questions whose reply passes.
    pub passed: usize,
    /// `passed / questions`.
    pub accuracy: f64,
}

/// The evaluation report written as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The model file.
    pub model: String,
    /// The data file.
    pub data: String,
    /// Max new tokens per reply.
    pub max_new_tokens: usize,
    /// Examples whose generation failed.
    pub generation_errors: usize,
    /// Examples whose reply hit the max new tokens limit.
    pub truncated: usize,
    /// Call-level metrics over all examples.
    pub metrics: Metrics,
    /// BFCL AST accuracy per category, for examples with a `bfcl` reference.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bfcl: BTreeMap<String, CategoryAccuracy>,
    /// Per-example results.
    pub results: Vec<ExampleResult>,
}

/// Scores one reply against a conversation's final assistant message.
pub fn score_example(id: String, conversation: &Conversation, reply: &str) -> ExampleResult {
    let (_, last) = conversation.split_last_assistant();
    let expected = last.map(|m| m.function_calls()).unwrap_or_default();
    let parsed = parse_reply(reply);
    let scores = score_calls(&expected, &parsed);
    let bfcl = conversation.bfcl.as_ref().map(|reference| bfcl_match::check(reference, &parsed.calls));
    ExampleResult {
        id,
        reply: reply.to_string(),
        expected,
        predicted: parsed.calls,
        parse_errors: parsed.errors,
        scores,
        category: conversation.bfcl.as_ref().map(|reference| reference.category.clone()),
        bfcl,
        prompt_tokens: 0,
        new_tokens: 0,
        stop: None,
        error: None,
    }
}

/// Sums per-example results into a report.
pub fn build_report(model: String, data: String, max_new_tokens: usize, results: Vec<ExampleResult>) -> EvalReport {
    let metrics = summarize(results.iter().map(|r| &r.scores));
    let mut bfcl: BTreeMap<String, CategoryAccuracy> = BTreeMap::new();
    for result in &results {
        if let (Some(outcome), Some(category)) = (&result.bfcl, &result.category) {
            let entry = bfcl.entry(category.clone()).or_default();
            entry.questions += 1;
            entry.passed += usize::from(outcome.valid);
        }
    }
    for entry in bfcl.values_mut() {
        entry.accuracy = entry.passed as f64 / entry.questions as f64;
    }
    EvalReport {
        model,
        data,
        max_new_tokens,
        generation_errors: results.iter().filter(|r| r.error.is_some()).count(),
        truncated: results.iter().filter(|r| r.stop == Some(StopReason::MaxTokens)).count(),
        metrics,
        bfcl,
        results,
    }
}

/// Generates a reply for each conversation and scores it. `progress` is called after each
/// example with the number done. A failed generation is recorded in the example's `error`
/// and scores as an empty reply.
pub fn evaluate(
    generator: &mut Generator<'_>,
    conversations: &[Conversation],
    mut progress: impl FnMut(usize, &ExampleResult),
) -> Vec<ExampleResult> {
    let mut results = Vec::with_capacity(conversations.len());
    for (index, conversation) in conversations.iter().enumerate() {
        let id = conversation.id.clone().unwrap_or_else(|| format!("line {}", index + 1));
        let result = match generator.generate(conversation) {
            Ok(Generation { text, prompt_tokens, new_tokens, stop }) => {
                ExampleResult { prompt_tokens, new_tokens, stop: Some(stop), ..score_example(id, conversation, &text) }
            }
            Err(error) => ExampleResult { error: Some(error.to_string()), ..score_example(id, conversation, "") },
        };
        progress(index + 1, &result);
        results.push(result);
    }
    results
}
