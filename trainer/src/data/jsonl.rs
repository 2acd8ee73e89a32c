//! Reading and writing JSONL files of conversations, and atomic file writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::chat::Conversation;
use super::error::{DataError, Result};

/// Reads every conversation of a JSONL file. Blank lines are skipped; an error names the
/// file, the 1-based line and the field.
pub fn read_conversations(path: &Path) -> Result<Vec<Conversation>> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read { path: path.to_path_buf(), source })?;
    let mut conversations = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = std::str::from_utf8(line).map_err(|error| DataError::Json {
            path: path.to_path_buf(),
            line: number,
            message: format!("the line is not UTF-8 ({error}); save the file as UTF-8"),
        })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|error| DataError::Json { path: path.to_path_buf(), line: number, message: error.to_string() })?;
        let conversation =
            Conversation::from_value(&value).map_err(|error| DataError::Field { path: path.to_path_buf(), line: number, error })?;
        conversations.push(conversation);
    }
    Ok(conversations)
}

/// Encodes `items` as JSONL, one compact JSON object per line.
pub fn to_jsonl<T: Serialize>(items: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|error| DataError::Invalid(format!("cannot encode JSON: {error}")))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes conversations to a JSONL file atomically.
pub fn write_conversations(path: &Path, conversations: &[Conversation]) -> Result<()> {
    write_atomic(path, &to_jsonl(conversations)?)
}

/// Writes `value` as pretty-printed JSON atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|error| DataError::Invalid(format!("cannot encode JSON: {error}")))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to a temporary file next to `path`, flushes it to disk and renames it into
/// place, so a reader sees the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temporary_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        DataError::Write { path: path.to_path_buf(), source }
    })
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}
