//! The AST check of the Berkeley Function Calling Leaderboard for Python categories, on calls
//! parsed from JSON.
//!
//! It follows `ast_checker.py` of bfcl-eval (`simple_function_checker`, `type_checker`,
//! `string_checker`, `list_checker`, `dict_checker`, `list_dict_checker`):
//!
//! - the function name must equal the expected one, and every required parameter be given;
//! - a parameter must be declared by the function and listed in the possible answer;
//! - its value must have the declared Python type, where an int is accepted for a float; a
//!   value of the possible answer's own type when that differs from the declared one is
//!   accepted as a variable name;
//! - strings compare after removing spaces and `,./-_*^`, lower-casing and turning `'` into
//!   `"`; lists compare element-wise with their strings so normalized; dicts compare key by
//!   key; other values compare as Python `==` does (`5 == 5.0`, `True == 1`);
//! - a parameter left out must list `""` among its accepted values;
//! - the number of calls must equal the number expected, and parallel calls match in any
//!   order. Where bfcl-eval matches parallel calls greedily, this check finds a complete
//!   matching if one exists, so it accepts a rare reply that the greedy order rejects;
//! - for `irrelevance`, where nothing is expected, the reply must make no call.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::data::bfcl::{BfclReference, ExpectedCall};
use crate::data::FunctionCall;

/// The result of the check for one question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BfclOutcome {
    /// Whether the reply passes.
    pub valid: bool,
    /// bfcl-eval's error type, such as `value_error:string`; empty when valid.
    pub error_type: String,
    /// What failed; empty when valid.
    pub error: String,
}

impl BfclOutcome {
    fn pass() -> BfclOutcome {
        BfclOutcome { valid: true, error_type: String::new(), error: String::new() }
    }

    fn fail(error_type: &str, error: impl Into<String>) -> BfclOutcome {
        BfclOutcome { valid: false, error_type: error_type.to_string(), error: error.into() }
    }
}

/// Python's type of a JSON value, as `json.loads` produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyType {
    Str,
    Int,
    Float,
    Bool,
    List,
    Dict,
    None,
}

fn py_type(value: &Value) -> PyType {
    match value {
        Value::String(_) => PyType::Str,
        Value::Number(n) if n.is_f64() => PyType::Float,
        Value::Number(_) => PyType::Int,
        Value::Bool(_) => PyType::Bool,
        Value::Array(_) => PyType::List,
        Value::Object(_) => PyType::Dict,
        Value::Null => PyType::None,
    }
}

/// BFCL's `PYTHON_TYPE_MAPPING`, plus the JSON-schema names `object`, `number` and `list`.
fn declared_type(name: &str) -> Option<PyType> {
    match name {
        "string" | "any" => Some(PyType::Str),
        "integer" => Some(PyType::Int),
        "float" | "number" => Some(PyType::Float),
        "boolean" => Some(PyType::Bool),
        "array" | "tuple" | "list" => Some(PyType::List),
        "dict" | "object" => Some(PyType::Dict),
        _ => None,
    }
}

/// Python `==` on JSON values: numbers and booleans compare by value.
fn py_eq(a: &Value, b: &Value) -> bool {
    let numeric = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(flag) => Some(f64::from(u8::from(*flag))),
        _ => None,
    };
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w))),
        _ => match (numeric(a), numeric(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn py_in(value: &Value, list: &[Value]) -> bool {
    list.iter().any(|item| py_eq(value, item))
}

/// BFCL's `standardize_string`.
pub fn standardize_string(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^')).collect::<String>().to_lowercase().replace('\'', "\"")
}

fn standardized(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::from(standardize_string(text)),
        other => other.clone(),
    }
}

fn is_optional_marker(value: &Value) -> bool {
    value.as_str() == Some("")
}

/// The type of the first accepted value that is not the optional marker `""`.
fn possible_answer_type(alternatives: &[Value]) -> Option<PyType> {
    alternatives.iter().find(|v| !is_optional_marker(v)).map(py_type)
}

/// `type_checker`: Ok(is_variable) when the type is acceptable.
fn type_check(param: &str, value: &Value, alternatives: &[Value], declared: PyType, nested: Option<PyType>) -> Result<bool, BfclOutcome> {
    let answer_type = possible_answer_type(alternatives);
    let is_variable = answer_type.is_some_and(|t| t != declared);
    let mut nested_failed = false;
    if py_type(value) == declared {
        let Some(nested) = nested else { return Ok(is_variable) };
        let items: &[Value] = value.as_array().map(Vec::as_slice).unwrap_or_default();
        for alternative in alternatives {
            let mut all_items_ok = true;
            if let Value::Array(alternative_items) = alternative {
                all_items_ok = items.iter().all(|item| type_check(param, item, alternative_items, nested, None).is_ok());
            }
            if all_items_ok {
                return Ok(is_variable);
            }
        }
        nested_failed = true;
    }
    if nested_failed {
        return Err(BfclOutcome::fail("type_error:nested", format!("nested type check failed for parameter {param:?}: {value}")));
    }
    if answer_type.is_some_and(|t| py_type(value) == t) {
        return Ok(true);
    }
    Err(BfclOutcome::fail("type_error:simple", format!("incorrect type for parameter {param:?}: expected {declared:?}, got {:?} ({value})", py_type(value))))
}

fn string_check(param: &str, value: &str, alternatives: &[Value]) -> Result<(), BfclOutcome> {
    let model = standardize_string(value);
    if alternatives.iter().filter_map(Value::as_str).any(|a| standardize_string(a) == model) {
        Ok(())
    } else {
        Err(BfclOutcome::fail("value_error:string", format!("invalid value for parameter {param:?}: {value:?}; expected one of {alternatives:?}")))
    }
}

fn list_check(param: &str, value: &[Value], alternatives: &[Value]) -> Result<(), BfclOutcome> {
    let model: Vec<Value> = value.iter().map(standardized).collect();
    let model = Value::Array(model);
    for alternative in alternatives {
        let items: Vec<Value> = match alternative {
            Value::Array(items) => items.iter().map(standardized).collect(),
            // Python iterates a string character by character; `""` becomes an empty list.
            Value::String(text) => text.chars().map(|c| standardized(&Value::from(c.to_string()))).collect(),
            _ => continue,
        };
        if py_eq(&model, &Value::Array(items)) {
            return Ok(());
        }
    }
    Err(BfclOutcome::fail("value_error:list/tuple", format!("invalid value for parameter {param:?}: {}; expected one of {alternatives:?}", Value::Array(value.to_vec()))))
}

fn dict_check(value: &Map<String, Value>, alternatives: &[Value]) -> Result<(), BfclOutcome> {
    let mut outcome = BfclOutcome::fail("dict_checker:unclear", "no accepted dict value");
    for alternative in alternatives {
        let Some(expected) = alternative.as_object() else { continue };
        let mut ok = true;
        for (key, item) in value {
            let Some(accepted) = expected.get(key) else {
                outcome = BfclOutcome::fail("value_error:dict_key", format!("unexpected dict key {key:?}"));
                ok = false;
                break;
            };
            let accepted: Vec<Value> = accepted.as_array().map(|list| list.iter().map(standardized).collect()).unwrap_or_default();
            if !py_in(&standardized(item), &accepted) {
                outcome = BfclOutcome::fail("value_error:dict_value", format!("invalid value for dict key {key:?}: {item}"));
                ok = false;
                break;
            }
        }
        if ok {
            for (key, accepted) in expected {
                let optional = accepted.as_array().is_some_and(|list| list.iter().any(is_optional_marker));
                if !value.contains_key(key) && !optional {
                    outcome = BfclOutcome::fail("value_error:dict_key", format!("missing dict key {key:?}"));
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(());
        }
    }
    Err(outcome)
}

fn list_dict_check(value: &[Value], alternatives: &[Value]) -> Result<(), BfclOutcome> {
    let mut outcome = BfclOutcome::fail("list_dict_checker:unclear", "no accepted list of dicts");
    for alternative in alternatives {
        let Some(expected) = alternative.as_array() else { continue };
        if expected.len() != value.len() {
            outcome = BfclOutcome::fail("value_error:list_dict_count", "wrong number of dictionaries in the list");
            continue;
        }
        let mut ok = true;
        for (item, expected_item) in value.iter().zip(expected) {
            let result = match item.as_object() {
                Some(map) => dict_check(map, std::slice::from_ref(expected_item)),
                None => Err(BfclOutcome::fail("type_error:nested", format!("expected a dict, got {item}"))),
            };
            if let Err(error) = result {
                outcome = error;
                ok = false;
                break;
            }
        }
        if ok {
            return Ok(());
        }
    }
    Err(outcome)
}

/// `simple_function_checker`: one call against one expected call.
pub fn check_call(function: &Value, call: &FunctionCall, expected: &ExpectedCall) -> BfclOutcome {
    match check_call_inner(function, call, expected) {
        Ok(()) => BfclOutcome::pass(),
        Err(outcome) => outcome,
    }
}

fn check_call_inner(function: &Value, call: &FunctionCall, expected: &ExpectedCall) -> Result<(), BfclOutcome> {
    if call.name != expected.name {
        return Err(BfclOutcome::fail("simple_function_checker:wrong_func_name", format!("expected function {:?}, got {:?}", expected.name, call.name)));
    }
    let empty = Map::new();
    let properties = function.pointer("/parameters/properties").and_then(Value::as_object).unwrap_or(&empty);
    let required = function.pointer("/parameters/required").and_then(Value::as_array).cloned().unwrap_or_default();
    for param in required.iter().filter_map(Value::as_str) {
        if !call.arguments.contains_key(param) {
            return Err(BfclOutcome::fail("simple_function_checker:missing_required", format!("missing required parameter {param:?}")));
        }
    }
    for (param, value) in &call.arguments {
        let (Some(schema), Some(alternatives)) = (properties.get(param), expected.alternatives.get(param)) else {
            return Err(BfclOutcome::fail("simple_function_checker:unexpected_param", format!("unexpected parameter {param:?}")));
        };
        let type_name = schema.get("type").and_then(Value::as_str).unwrap_or("");
        let declared = declared_type(type_name)
            .ok_or_else(|| BfclOutcome::fail("type_error:unsupported", format!("parameter {param:?} declares unsupported type {type_name:?}")))?;
        let nested = if matches!(type_name, "array" | "tuple") {
            let item_type = schema.pointer("/items/type").and_then(Value::as_str).unwrap_or("");
            Some(declared_type(item_type).ok_or_else(|| {
                BfclOutcome::fail("type_error:unsupported", format!("parameter {param:?} declares unsupported item type {item_type:?}"))
            })?)
        } else {
            None
        };
        // Python converts an int to float where a float is expected.
        let value = match value {
            Value::Number(n) if declared == PyType::Float && !n.is_f64() => n.as_f64().and_then(serde_json::Number::from_f64).map_or_else(|| value.clone(), Value::Number),
            _ => value.clone(),
        };
        let is_variable = type_check(param, &value, alternatives, declared, nested)?;
        if !is_variable {
            match (&value, declared, nested) {
                (Value::Object(map), PyType::Dict, _) => {
                    dict_check(map, alternatives)?;
                    continue;
                }
                (Value::Array(items), PyType::List, Some(PyType::Dict)) => {
                    list_dict_check(items, alternatives)?;
                    continue;
                }
                (Value::String(text), PyType::Str, _) => {
                    string_check(param, text, alternatives)?;
                    continue;
                }
                (Value::Array(items), PyType::List, _) => {
                    list_check(param, items, alternatives)?;
                    continue;
                }
                _ => {}
            }
        }
        if !py_in(&value, alternatives) {
            return Err(BfclOutcome::fail("value_error:others", format!("invalid value for parameter {param:?}: {value}; expected one of {alternatives:?}")));
        }
    }
    for (param, alternatives) in &expected.alternatives {
        if !call.arguments.contains_key(param) && !alternatives.iter().any(is_optional_marker) {
            return Err(BfclOutcome::fail("simple_function_checker:missing_optional", format!("parameter {param:?} is left out but has no \"\" alternative")));
        }
    }
    Ok(())
}

/// Finds an augmenting path for expected call `index` (Kuhn's algorithm).
fn augment(index: usize, passes: &[Vec<bool>], seen: &mut [bool], assigned: &mut [Option<usize>]) -> bool {
    for (call, &pass) in passes[index].iter().enumerate() {
        if pass && !seen[call] {
            seen[call] = true;
            if assigned[call].is_none_or(|other| augment(other, passes, seen, assigned)) {
                assigned[call] = Some(index);
                return true;
            }
        }
    }
    false
}

/// Checks a reply's calls against a BFCL question's accepted answers.
pub fn check(reference: &BfclReference, calls: &[FunctionCall]) -> BfclOutcome {
    let expected = &reference.possible_answer;
    if expected.is_empty() {
        return if calls.is_empty() {
            BfclOutcome::pass()
        } else {
            BfclOutcome::fail("irrelevance:function_called", format!("no call was expected, but the reply calls {}", calls[0].name))
        };
    }
    if calls.len() != expected.len() {
        return BfclOutcome::fail("wrong_count", format!("expected {} calls, got {}", expected.len(), calls.len()));
    }
    let mut first_failure = None;
    let mut passes = vec![vec![false; calls.len()]; expected.len()];
    for (i, expected_call) in expected.iter().enumerate() {
        let function = reference.functions.iter().find(|f| f.get("name").and_then(Value::as_str) == Some(expected_call.name.as_str()));
        let Some(function) = function else {
            return BfclOutcome::fail("missing_function", format!("the question declares no function {:?}", expected_call.name));
        };
        for (j, call) in calls.iter().enumerate() {
            let outcome = check_call(function, call, expected_call);
            passes[i][j] = outcome.valid;
            if !outcome.valid && first_failure.is_none() && (call.name == expected_call.name || calls.len() == 1) {
                first_failure = Some(outcome);
            }
        }
    }
    let mut assigned = vec![None; calls.len()];
    for i in 0..expected.len() {
        let mut seen = vec![false; calls.len()];
        if !augment(i, &passes, &mut seen, &mut assigned) {
            return first_failure
                .unwrap_or_else(|| BfclOutcome::fail("cannot_find_match", format!("no call matches expected call {i} ({})", expected[i].name)));
        }
    }
    BfclOutcome::pass()
}
