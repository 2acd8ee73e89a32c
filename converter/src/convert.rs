//! Conversion of a source model into a `.tllm` file, written atomically.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use tinyllm::format::writer::{write_tllm, TensorPlan};
use tinyllm::DType;

use crate::error::{ConvertError, Result};
use crate::recipe::Recipe;
use crate::source::SourceModel;

/// Conversion settings.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The element type of each tensor. Vectors (norm weights, biases) stay f32 whatever the
    /// recipe selects, because they are small and their precision matters.
    pub recipe: Recipe,
}

impl ConvertOptions {
    /// Options that write every matrix as the float type `dtype`.
    pub fn float(dtype: DType) -> ConvertOptions {
        ConvertOptions { recipe: Recipe { float: dtype, ..Recipe::default() } }
    }
}

/// One line of the conversion summary.
#[derive(Debug, Clone)]
pub struct TensorSummary {
    /// `.tllm` tensor name.
    pub name: String,
    /// Name in the source.
    pub source_name: String,
    /// Source type, as the source format names it.
    pub source_type: String,
    /// Written type.
    pub dtype: DType,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Bytes written.
    pub bytes: u64,
}

/// The record of a finished conversion.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The output file.
    pub output: PathBuf,
    /// Number of weights.
    pub parameters: u64,
    /// Size of the output file in bytes.
    pub file_bytes: u64,
    /// Every tensor written, in file order.
    pub tensors: Vec<TensorSummary>,
}

/// The kind of input, detected from the path and the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A Hugging Face model directory.
    HuggingFace,
    /// A GGUF file.
    Gguf,
}

/// Tells a Hugging Face directory from a GGUF file.
pub fn detect_input(input: &Path) -> Result<InputKind> {
    if input.is_dir() {
        return Ok(InputKind::HuggingFace);
    }
    let mut magic = [0u8; 4];
    let mut file = File::open(input).map_err(|e| ConvertError::io(input, e))?;
    let read = file.read(&mut magic).map_err(|e| ConvertError::io(input, e))?;
    if read == 4 && &magic == b"GGUF" {
        Ok(InputKind::Gguf)
    } else {
        Err(ConvertError::InvalidField {
            path: input.to_path_buf(),
            field: "magic".into(),
            value: format!("{:02x?}", &magic[..read]),
            expected: "a Hugging Face model directory or a GGUF file (starting with \"GGUF\")".into(),
        })
    }
}

/// Opens the input as a source model.
pub fn open_source(input: &Path) -> Result<SourceModel> {
    match detect_input(input)? {
        InputKind::HuggingFace => crate::hf::open(input),
        InputKind::Gguf => crate::from_gguf::open(input),
    }
}

/// Converts `input` (a Hugging Face directory or a GGUF file) into the `.tllm` file `output`.
///
/// The file is written under a temporary name in the output directory, checked by opening
/// it with the runtime, then renamed over `output`. On any failure the temporary file is
/// removed and an existing `output` is left untouched.
pub fn convert(input: &Path, output: &Path, options: &ConvertOptions) -> Result<Summary> {
    let mut source = open_source(input)?;
    let file_name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    source.metadata.source = Some(format!("{file_name} (tinyllm-convert {})", env!("CARGO_PKG_VERSION")));
    write_model(&source, output, options)
}

/// Writes `source` as a `.tllm` file at `output`, atomically.
pub fn write_model(source: &SourceModel, output: &Path, options: &ConvertOptions) -> Result<Summary> {
    let plans: Vec<TensorPlan> = source
        .tensors
        .iter()
        .map(|t| {
            let source_format = source.source_blocks(t).map(|(format, _)| format);
            TensorPlan { name: t.name.clone(), dtype: options.recipe.dtype_for(&t.name, &t.shape, source_format), shape: t.shape.clone() }
        })
        .collect();

    for rule in &options.recipe.overrides {
        if !source.tensors.iter().any(|t| crate::recipe::glob_match(&rule.pattern, &t.name)) {
            return Err(ConvertError::InvalidField {
                path: PathBuf::from("--override"),
                field: "pattern".to_string(),
                value: rule.pattern.clone(),
                expected: "a pattern that matches a tensor name, such as layers.*.ffn_down or token_embd (tinyllm inspect lists the names)".to_string(),
            });
        }
    }
    if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !folder.is_dir() {
            return Err(ConvertError::io(folder, std::io::Error::new(std::io::ErrorKind::NotFound, "the output folder does not exist; create it first")));
        }
    }

    remove_stale_temporaries(output);
    let temp = temporary_path(output);
    let result = write_and_check(source, &plans, &temp);
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    std::fs::rename(&temp, output).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ConvertError::io(output, e)
    })?;
    sync_parent(output);

    let file_bytes = std::fs::metadata(output).map_err(|e| ConvertError::io(output, e))?.len();
    let tensors = source
        .tensors
        .iter()
        .zip(&plans)
        .map(|(t, plan)| TensorSummary {
            name: t.name.clone(),
            source_name: t.source_name.clone(),
            source_type: t.source_type.clone(),
            dtype: plan.dtype,
            shape: t.shape.clone(),
            bytes: plan.dtype.byte_len(&t.shape).unwrap_or(0),
        })
        .collect();
    let parameters = source.tensors.iter().map(|t| t.shape.iter().product::<u64>()).sum();
    Ok(Summary { output: output.to_path_buf(), parameters, file_bytes, tensors })
}

fn write_and_check(source: &SourceModel, plans: &[TensorPlan], temp: &Path) -> Result<()> {
    let file = File::create(temp).map_err(|e| ConvertError::io(temp, e))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut load_error = None;
    let written = write_tllm(&mut writer, &source.metadata, &source.tokenizer_json, plans, |i| {
        source.load_as(&source.tensors[i], plans[i].dtype).map_err(|error| {
            let message = error.to_string();
            load_error = Some(error);
            std::io::Error::other(message)
        })
    });
    if let Some(error) = load_error {
        return Err(error);
    }
    written.map_err(|e| ConvertError::io(temp, e))?;
    let file = writer.into_inner().map_err(|e| ConvertError::io(temp, e.into_error()))?;
    file.sync_all().map_err(|e| ConvertError::io(temp, e))?;
    drop(file);

    // The runtime's own checks: every tensor present with the shape the metadata implies.
    tinyllm::Model::open(temp).map_err(|source_error| ConvertError::Model { path: source.path.clone(), source: source_error })?;
    Ok(())
}

/// Returns a temporary name beside `output`, so the final rename stays on one file system.
fn temporary_path(output: &Path) -> PathBuf {
    output.with_file_name(format!(".{}.{}.tmp", output_name(output), std::process::id()))
}

fn output_name(output: &Path) -> String {
    output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model.tllm".into())
}

/// Removes temporary files that an earlier conversion to `output` left when it was killed:
/// those whose process no longer runs. Only Linux tells (through /proc); elsewhere nothing is
/// removed.
fn remove_stale_temporaries(output: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{}.", output_name(output));
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".tmp")) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes the rename of the output durable. Failure only weakens durability after a power
/// loss, not the result, so it is ignored.
fn sync_parent(output: &Path) {
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}
