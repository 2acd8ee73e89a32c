//! Evaluation of function calling: parsing replies into calls, call-level metrics, BFCL's
//! AST check, and greedy generation with the tinyllm runtime.

pub mod bfcl_match;
pub mod cli;
pub mod generate;
pub mod metrics;
pub mod parse;
pub mod report;

pub use bfcl_match::{check as check_bfcl, BfclOutcome};
pub use generate::{GenerateOptions, Generation, Generator, StopReason};
pub use metrics::{score_calls, summarize, CallScores, Metrics};
pub use parse::{parse_reply, ParsedReply};
pub use report::{evaluate, score_example, EvalReport, ExampleResult};
