//! Call-level metrics over a data set: valid-JSON rate, function-name accuracy, argument
//! exact match, full-call exact match and argument precision, recall and F1.
//!
//! Calls are compared as multisets, so the order of parallel calls does not matter. Values
//! compare as JSON with numbers compared by value (`5` equals `5.0`); strings compare exactly.

use serde::Serialize;
use serde_json::Value;

use super::parse::ParsedReply;
use crate::data::FunctionCall;

/// The scores of one example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CallScores {
    /// Whether a call was expected; the valid-JSON rate counts only such examples.
    pub expects_calls: bool,
    /// The reply contains call candidates and all are valid JSON calls.
    pub valid_json: bool,
    /// The multiset of function names equals the expected one.
    pub name_match: bool,
    /// The multiset of argument objects equals the expected one, whatever the names.
    pub arguments_match: bool,
    /// The multiset of (name, arguments) equals the expected one.
    pub full_match: bool,
    /// Predicted (function, parameter, value) triples that are expected.
    pub argument_true_positives: usize,
    /// Predicted (function, parameter, value) triples.
    pub argument_predicted: usize,
    /// Expected (function, parameter, value) triples.
    pub argument_expected: usize,
}

/// Metrics over a data set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Metrics {
    /// Examples scored.
    pub examples: usize,
    /// Examples that expect at least one call.
    pub examples_with_calls: usize,
    /// Of those, replies whose calls are valid JSON.
    pub valid_json: usize,
    /// Examples whose function names match.
    pub name_matches: usize,
    /// Examples whose argument objects match.
    pub arguments_matches: usize,
    /// Examples whose calls match in name and arguments.
    pub full_matches: usize,
    /// `valid_json / examples_with_calls`.
    pub valid_json_rate: f64,
    /// `name_matches / examples`.
    pub name_accuracy: f64,
    /// `arguments_matches / examples`.
    pub arguments_exact_match: f64,
    /// `full_matches / examples`.
    pub full_call_exact_match: f64,
    /// Micro-averaged precision of (function, parameter, value) triples.
    pub argument_precision: f64,
    /// Micro-averaged recall of (function, parameter, value) triples.
    pub argument_recall: f64,
    /// Harmonic mean of argument precision and recall.
    pub argument_f1: f64,
}

/// A canonical text of a JSON value: object keys sorted, numbers written as f64 values.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) => format!("{float:?}"),
            None => number.to_string(),
        },
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        Value::Object(map) => {
            let mut entries: Vec<String> = map.iter().map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical_json(v))).collect();
            entries.sort();
            format!("{{{}}}", entries.join(","))
        }
        other => other.to_string(),
    }
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

fn arguments_key(call: &FunctionCall) -> String {
    canonical_json(&Value::Object(call.arguments.clone()))
}

fn argument_triples(calls: &[FunctionCall]) -> Vec<(String, String, String)> {
    let mut triples = Vec::new();
    for call in calls {
        for (name, value) in &call.arguments {
            triples.push((call.name.clone(), name.clone(), canonical_json(value)));
        }
    }
    sorted(triples)
}

/// Size of the multiset intersection of two sorted lists.
fn intersection_size<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                count += 1;
                i += 1;
                j += 1;
            }
        }
    }
    count
}

/// Scores the calls of a reply against the expected calls.
pub fn score_calls(expected: &[FunctionCall], reply: &ParsedReply) -> CallScores {
    let predicted = &reply.calls;
    let names = |calls: &[FunctionCall]| sorted(calls.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    let arguments = |calls: &[FunctionCall]| sorted(calls.iter().map(arguments_key).collect::<Vec<_>>());
    let full = |calls: &[FunctionCall]| sorted(calls.iter().map(|c| (c.name.clone(), arguments_key(c))).collect::<Vec<_>>());
    let expected_triples = argument_triples(expected);
    let predicted_triples = argument_triples(predicted);
    CallScores {
        expects_calls: !expected.is_empty(),
        valid_json: reply.valid_json(),
        name_match: names(expected) == names(predicted),
        arguments_match: arguments(expected) == arguments(predicted),
        full_match: full(expected) == full(predicted),
        argument_true_positives: intersection_size(&expected_triples, &predicted_triples),
        argument_predicted: predicted_triples.len(),
        argument_expected: expected_triples.len(),
    }
}

fn ratio(count: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// Sums per-example scores into metrics.
pub fn summarize<'a>(scores: impl IntoIterator<Item = &'a CallScores>) -> Metrics {
    let mut metrics = Metrics::default();
    let (mut true_positives, mut predicted, mut expected) = (0, 0, 0);
    for score in scores {
        metrics.examples += 1;
        if score.expects_calls {
            metrics.examples_with_calls += 1;
            metrics.valid_json += usize::from(score.valid_json);
        }
        metrics.name_matches += usize::from(score.name_match);
        metrics.arguments_matches += usize::from(score.arguments_match);
        metrics.full_matches += usize::from(score.full_match);
        true_positives += score.argument_true_positives;
        predicted += score.argument_predicted;
        expected += score.argument_expected;
    }
    metrics.valid_json_rate = ratio(metrics.valid_json, metrics.examples_with_calls);
    metrics.name_accuracy = ratio(metrics.name_matches, metrics.examples);
    metrics.arguments_exact_match = ratio(metrics.arguments_matches, metrics.examples);
    metrics.full_call_exact_match = ratio(metrics.full_matches, metrics.examples);
    metrics.argument_precision = ratio(true_positives, predicted);
    metrics.argument_recall = ratio(true_positives, expected);
    let sum = metrics.argument_precision + metrics.argument_recall;
    metrics.argument_f1 = if sum > 0.0 { 2.0 * metrics.argument_precision * metrics.argument_recall / sum } else { 0.0 };
    metrics
}
