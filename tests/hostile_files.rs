//! A table of hostile input files (`.tllm`, GGUF, Hugging Face directories). Each one must end
//! in a typed error whose message names the field or tensor, raised when the file is opened,
//! verified, its tokenizer loaded or the model run, and never in success or a panic. The peak
//! heap use while reading it must stay within `8 * input_len + 8 MiB`, so that no allocation is
//! sized by a field that was not checked against the file length.
//!
//! One test runs the whole table in order, so that the counting allocator of this test binary
//! measures each case alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use tinyllm::format::header::{metadata_checksum, CHECKSUM_OFFSET};
use tinyllm::format::table::parse_table;
use tinyllm::format::{crc32, Header, TensorEntry, HEADER_SIZE, TENSOR_ALIGNMENT};
use tinyllm::quant::QuantFormat;
use tinyllm::{ErrorKind, Model, Session, Tokenizer};
use tinyllm_convert::gguf::{GgufError, GgufFile};
use tinyllm_convert::recipe::{Preset, Recipe};
use tinyllm_convert::{ConvertError, ConvertOptions};
use tinyllm_tests::{fixtures_dir, AlignedBytes};

// ---------------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------------

/// The system allocator, counting the bytes currently allocated and their peak.
struct CountingAllocator;

static CURRENT_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn record_growth(bytes: usize) {
    let now = CURRENT_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
}

fn record_shrink(bytes: usize) {
    CURRENT_BYTES.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the same arguments; the counters only
// observe the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            record_growth(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            record_growth(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        record_shrink(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            if new_size > layout.size() {
                record_growth(new_size - layout.size());
            } else {
                record_shrink(layout.size() - new_size);
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `work` and returns its result with the peak heap bytes it allocated on top of what was
/// allocated before it started.
fn measure_peak<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let baseline = CURRENT_BYTES.load(Ordering::Relaxed);
    PEAK_BYTES.store(baseline, Ordering::Relaxed);
    let result = work();
    let peak = PEAK_BYTES.load(Ordering::Relaxed);
    (result, peak.saturating_sub(baseline))
}

// ---------------------------------------------------------------------------------------------
// Cases and expected errors
// ---------------------------------------------------------------------------------------------

/// The error a case ended with: the runtime's for `.tllm` files, the converter's otherwise.
#[derive(Debug)]
enum Failure {
    Runtime(tinyllm::Error),
    Convert(ConvertError),
}

impl Failure {
    fn runtime_kind(&self) -> Option<&ErrorKind> {
        match self {
            Failure::Runtime(error) => Some(error.kind()),
            Failure::Convert(_) => None,
        }
    }

    fn convert(&self) -> Option<&ConvertError> {
        match self {
            Failure::Convert(error) => Some(error),
            Failure::Runtime(_) => None,
        }
    }

    fn gguf(&self) -> Option<&GgufError> {
        match self {
            Failure::Convert(ConvertError::Gguf { source, .. }) => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Runtime(error) => write!(f, "{error}"),
            Failure::Convert(error) => write!(f, "{error}"),
        }
    }
}

/// The typed error a case must end with, as the pattern text and its test.
struct Expected {
    pattern: &'static str,
    matches: fn(&Failure) -> bool,
}

/// Expects a runtime error whose `ErrorKind` matches the pattern.
macro_rules! runtime_error {
    ($pattern:pat) => {
        Expected { pattern: stringify!($pattern), matches: |failure| matches!(failure.runtime_kind(), Some($pattern)) }
    };
}

/// Expects a converter error that matches the pattern.
macro_rules! convert_error {
    ($pattern:pat) => {
        Expected { pattern: stringify!($pattern), matches: |failure| matches!(failure.convert(), Some($pattern)) }
    };
}

/// Expects a `ConvertError::Gguf` whose `GgufError` matches the pattern.
macro_rules! gguf_error {
    ($pattern:pat) => {
        Expected { pattern: concat!("ConvertError::Gguf(", stringify!($pattern), ")"), matches: |failure| matches!(failure.gguf(), Some($pattern)) }
    };
}

/// What a `.tllm` case runs after opening the file.
#[derive(Clone, Copy)]
struct TllmRun {
    /// Call `Model::verify_tensors` before loading the tokenizer and running the model.
    verify: bool,
    /// Text to encode with the model's tokenizer and evaluate.
    prompt: &'static str,
}

const FULL_RUN: TllmRun = TllmRun { verify: true, prompt: "Hello world" };
const EVAL_WITHOUT_VERIFY: TllmRun = TllmRun { verify: false, prompt: "Hello world" };

enum Input {
    /// A `.tllm` file, opened with `Model::from_bytes`.
    Tllm { bytes: Vec<u8>, run: TllmRun },
    /// A GGUF file, read with `GgufFile::from_bytes` and `from_gguf::from_file`.
    Gguf(Vec<u8>),
    /// A Hugging Face model directory, read with `hf::open`.
    HuggingFace(tempfile::TempDir),
}

struct Case {
    name: &'static str,
    input: Input,
    expected: Expected,
    /// Text the error message must contain: the field, tensor or value at fault.
    message_contains: &'static str,
}

fn case(name: &'static str, input: Input, expected: Expected, message_contains: &'static str) -> Case {
    Case { name, input, expected, message_contains }
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

/// Opens a `.tllm` file and uses it as an application would: verify, tokenize, evaluate.
fn run_tllm(bytes: &[u8], run: TllmRun) -> Result<(), tinyllm::Error> {
    let model = Model::from_bytes(bytes)?;
    if run.verify {
        model.verify_tensors()?;
    }
    let tokenizer = Tokenizer::from_model(&model)?;
    let tokens = tokenizer.encode(run.prompt, false)?;
    let mut session = Session::new(&model, Some(16));
    session.eval(&tokens)?;
    Ok(())
}

/// Reads a GGUF file as the converter does and decodes every tensor to f32.
fn run_gguf(bytes: Vec<u8>) -> Result<(), ConvertError> {
    let path = Path::new("hostile.gguf");
    let gguf = GgufFile::from_bytes(bytes).map_err(|source| ConvertError::Gguf { path: path.to_path_buf(), source })?;
    let source = tinyllm_convert::from_gguf::from_file(gguf, path)?;
    for tensor in &source.tensors {
        source.load_f32(tensor)?;
    }
    Ok(())
}

/// Reads a Hugging Face directory as the converter does and decodes every tensor to f32.
fn run_hugging_face(dir: &Path) -> Result<(), ConvertError> {
    let source = tinyllm_convert::hf::open(dir)?;
    for tensor in &source.tensors {
        source.load_f32(tensor)?;
    }
    Ok(())
}

fn directory_size(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().metadata().unwrap().len() as usize).sum()
}

/// Runs one case and returns its input size, the peak extra heap bytes, and the outcome: the
/// error, or a description of what went wrong instead.
fn run_case(input: Input) -> (usize, usize, Result<Failure, String>) {
    let outcome = |result: std::thread::Result<Result<(), Failure>>| match result {
        Ok(Err(failure)) => Ok(failure),
        Ok(Ok(())) => Err("the file was accepted".to_string()),
        Err(panic) => {
            let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panicked: {}", message.unwrap_or_default()))
        }
    };
    match input {
        Input::Tllm { bytes, run } => {
            let aligned = AlignedBytes::new(&bytes);
            let (result, peak) = measure_peak(|| catch_unwind(AssertUnwindSafe(|| run_tllm(aligned.bytes(), run).map_err(Failure::Runtime))));
            (bytes.len(), peak, outcome(result))
        }
        Input::Gguf(bytes) => {
            let len = bytes.len();
            let (result, peak) = measure_peak(|| catch_unwind(AssertUnwindSafe(|| run_gguf(bytes).map_err(Failure::Convert))));
            (len, peak, outcome(result))
        }
        Input::HuggingFace(temp) => {
            let dir = temp.path().join("model");
            let len = directory_size(&dir);
            let (result, peak) = measure_peak(|| catch_unwind(AssertUnwindSafe(|| run_hugging_face(&dir).map_err(Failure::Convert))));
            (len, peak, outcome(result))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building `.tllm` files
// ---------------------------------------------------------------------------------------------

/// The llama-gqa fixture converted with every matrix in Q8_0 (rows interleaved by four).
fn converted_fixture() -> Vec<u8> {
    let temp = tempfile::tempdir().unwrap();
    let output = temp.path().join("llama-gqa-q8.tllm");
    let options = ConvertOptions { recipe: Recipe { preset: Preset::Uniform(QuantFormat::Q8_0), ..Recipe::default() } };
    tinyllm_convert::convert(&fixtures_dir().join("models/llama-gqa"), &output, &options).expect("the fixture converts");
    fs::read(&output).unwrap()
}

/// The sections of a `.tllm` file, to be edited and joined again.
#[derive(Clone)]
struct TllmParts {
    metadata: Vec<u8>,
    tokenizer: Vec<u8>,
    table: Vec<TensorEntry>,
    data: Vec<u8>,
}

fn section_bytes(bytes: &[u8], section: tinyllm::format::header::Section) -> &[u8] {
    &bytes[section.offset as usize..(section.offset + section.len) as usize]
}

impl TllmParts {
    fn split(bytes: &[u8]) -> TllmParts {
        let header = Header::parse(bytes).unwrap();
        let table = parse_table(section_bytes(bytes, header.tensor_table), header.tensor_count, header.data.offset, header.data.len).unwrap();
        TllmParts {
            metadata: section_bytes(bytes, header.metadata).to_vec(),
            tokenizer: section_bytes(bytes, header.tokenizer).to_vec(),
            table,
            data: section_bytes(bytes, header.data).to_vec(),
        }
    }

    /// Lays the sections out as the writer does (data section on a multiple of 64) and
    /// computes the metadata checksum. Tensor offsets are relative to the data section, so
    /// they stay valid when an earlier section changes length.
    fn join(&self) -> Vec<u8> {
        let mut table = Vec::new();
        for entry in &self.table {
            entry.encode(&mut table);
        }
        let section = |offset: usize, len: usize| tinyllm::format::header::Section { offset: offset as u64, len: len as u64 };
        let metadata = section(HEADER_SIZE, self.metadata.len());
        let tokenizer = section(HEADER_SIZE + self.metadata.len(), self.tokenizer.len());
        let table_start = tokenizer.offset as usize + self.tokenizer.len();
        let tensor_table = section(table_start, table.len());
        let data_start = (table_start + table.len()).next_multiple_of(TENSOR_ALIGNMENT as usize);
        let header = Header {
            version: tinyllm::format::VERSION,
            flags: 0,
            metadata,
            tokenizer,
            tensor_table,
            data: section(data_start, self.data.len()),
            tensor_count: self.table.len() as u32,
            metadata_checksum: 0,
        };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&self.metadata);
        bytes.extend_from_slice(&self.tokenizer);
        bytes.extend_from_slice(&table);
        bytes.resize(data_start, 0);
        bytes.extend_from_slice(&self.data);
        fix_checksum(&mut bytes);
        bytes
    }

    fn edit_metadata(mut self, edit: impl FnOnce(&mut Value)) -> TllmParts {
        let mut value: Value = serde_json::from_slice(&self.metadata).unwrap();
        edit(&mut value);
        self.metadata = serde_json::to_vec_pretty(&value).unwrap();
        self
    }

    fn edit_tokenizer(mut self, edit: impl FnOnce(&mut Value)) -> TllmParts {
        let mut value: Value = serde_json::from_slice(&self.tokenizer).unwrap();
        edit(&mut value);
        self.tokenizer = serde_json::to_vec(&value).unwrap();
        self
    }

    fn edit_entry(mut self, name: &str, edit: impl FnOnce(&mut TensorEntry)) -> TllmParts {
        let entry = self.table.iter_mut().find(|entry| entry.name == name).unwrap_or_else(|| panic!("tensor {name} is in the table"));
        edit(entry);
        self
    }

    /// Edits the bytes of tensor `name` and updates its CRC-32, so that only the new content
    /// can be at fault.
    fn edit_tensor_data(mut self, name: &str, edit: impl FnOnce(&mut [u8])) -> TllmParts {
        let entry = self.table.iter_mut().find(|entry| entry.name == name).unwrap_or_else(|| panic!("tensor {name} is in the table"));
        let range = entry.offset as usize..(entry.offset + entry.length) as usize;
        edit(&mut self.data[range.clone()]);
        entry.crc32 = crc32(&self.data[range]);
        self
    }

    fn entry(&self, name: &str) -> &TensorEntry {
        self.table.iter().find(|entry| entry.name == name).unwrap()
    }
}

/// Recomputes the metadata checksum after an edit of the header or a checksummed section.
fn fix_checksum(bytes: &mut [u8]) {
    let header = Header::parse(bytes).expect("the edited header still parses");
    let checksum = metadata_checksum(bytes, &header);
    bytes[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&checksum.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn tllm(bytes: Vec<u8>) -> Input {
    Input::Tllm { bytes, run: FULL_RUN }
}

fn tllm_cases(base: &[u8]) -> Vec<Case> {
    let parts = TllmParts::split(base);
    let header = Header::parse(base).unwrap();
    let cut = |end: u64| tllm(base[..end as usize].to_vec());
    let middle = |section: tinyllm::format::header::Section| section.offset + section.len / 2;
    let edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = base.to_vec();
        edit(&mut bytes);
        tllm(bytes)
    };
    let attn_q_length = parts.entry("layers.0.attn_q").length;
    let attn_q_data = (header.data.offset + parts.entry("layers.0.attn_q").offset) as usize;
    let attn_k_offset = parts.entry("layers.0.attn_k").offset;
    let nan_in_norm = parts.clone().edit_tensor_data("layers.0.attn_norm", |data| data[..4].copy_from_slice(&f32::NAN.to_le_bytes())).join();
    // The first two bytes of a Q8_0 block are its f16 scale, and 0x7C00 is +inf in f16.
    let inf_scale = parts.clone().edit_tensor_data("layers.0.attn_q", |data| data[..2].copy_from_slice(&0x7C00u16.to_le_bytes())).join();
    // The tokenizers library ignores the id written for an added token that the vocabulary
    // lacks and gives it the next free id instead (it only logs a warning). Fillers take the
    // ids up to the model's vocab_size, so "<|far_away|>", written as 1000000, gets the first
    // id past the embedding rows.
    let tokenizer_vocab = Tokenizer::from_json(&parts.tokenizer, Default::default()).unwrap().vocab_size();
    let model_vocab = serde_json::from_slice::<Value>(&parts.metadata).unwrap()["vocab_size"].as_u64().unwrap() as usize;
    let far_token = parts
        .clone()
        .edit_tokenizer(|tokenizer| {
            let added = tokenizer["added_tokens"].as_array_mut().unwrap();
            let token = |id: usize, content: String| json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
            for id in tokenizer_vocab..model_vocab {
                added.push(token(id, format!("<|filler_{id}|>")));
            }
            added.push(token(1_000_000, "<|far_away|>".to_string()));
        })
        .join();

    vec![
        case("tllm: empty file", tllm(Vec::new()), runtime_error!(ErrorKind::Truncated { .. }), "header"),
        case("tllm: truncated in the header", cut(50), runtime_error!(ErrorKind::Truncated { .. }), "header"),
        case("tllm: truncated in the metadata", cut(middle(header.metadata)), runtime_error!(ErrorKind::OutOfBounds { .. }), "metadata section"),
        case("tllm: truncated in the tokenizer", cut(middle(header.tokenizer)), runtime_error!(ErrorKind::OutOfBounds { .. }), "tokenizer section"),
        case("tllm: truncated in the tensor table", cut(middle(header.tensor_table)), runtime_error!(ErrorKind::OutOfBounds { .. }), "tensor table section"),
        case("tllm: truncated in the tensor data", cut(middle(header.data)), runtime_error!(ErrorKind::OutOfBounds { .. }), "tensor data section"),
        case("tllm: wrong magic", edited(&|b| b[..4].copy_from_slice(b"GGUF")), runtime_error!(ErrorKind::BadMagic { .. }), "magic bytes"),
        case(
            "tllm: flipped bit in the metadata",
            edited(&|b| b[header.metadata.offset as usize + 10] ^= 0x02),
            runtime_error!(ErrorKind::ChecksumMismatch { .. }),
            "metadata: checksum mismatch",
        ),
        case(
            "tllm: flipped bit in a tensor",
            edited(&|b| b[attn_q_data + 100] ^= 0x10),
            runtime_error!(ErrorKind::ChecksumMismatch { .. }),
            "tensor layers.0.attn_q",
        ),
        case("tllm: metadata length u64::MAX", edited(&|b| put_u64(b, 24, u64::MAX)), runtime_error!(ErrorKind::OutOfBounds { .. }), "metadata section"),
        case(
            "tllm: tokenizer offset beyond the file",
            edited(&|b| {
                let beyond = b.len() as u64 + 64;
                put_u64(b, 32, beyond)
            }),
            runtime_error!(ErrorKind::OutOfBounds { .. }),
            "tokenizer section",
        ),
        case("tllm: data offset 2^40", edited(&|b| put_u64(b, 64, 1 << 40)), runtime_error!(ErrorKind::OutOfBounds { .. }), "tensor data section"),
        case(
            "tllm: tensor count 2^31",
            edited(&|b| {
                put_u32(b, 80, 1 << 31);
                fix_checksum(b);
            }),
            runtime_error!(ErrorKind::InvalidValue { .. }),
            "header.tensor_count",
        ),
        case(
            "tllm: dims product overflows u64",
            tllm(parts.clone().edit_entry("layers.0.attn_norm", |entry| entry.shape = vec![1 << 33, 1 << 33]).join()),
            runtime_error!(ErrorKind::InvalidValue { .. }),
            "tensor layers.0.attn_norm: length",
        ),
        case(
            "tllm: one dim 2^40, length to match",
            tllm(
                parts
                    .clone()
                    .edit_entry("token_embd", |entry| {
                        entry.shape[0] = 1 << 40;
                        entry.length = entry.dtype.byte_len(&entry.shape).unwrap();
                    })
                    .join(),
            ),
            runtime_error!(ErrorKind::OutOfBounds { .. }),
            "tensor token_embd",
        ),
        case(
            "tllm: overlapping tensors",
            tllm(parts.clone().edit_entry("layers.0.attn_v", |entry| entry.offset = attn_k_offset).join()),
            runtime_error!(ErrorKind::OutOfBounds { .. }),
            "overlaps tensor layers.0.attn_k",
        ),
        case(
            "tllm: max_context 2^31",
            tllm(parts.clone().edit_metadata(|m| m["max_context"] = json!(1u64 << 31)).join()),
            runtime_error!(ErrorKind::InvalidValue { .. }),
            "max_context",
        ),
        case(
            "tllm: max_context 0",
            tllm(parts.clone().edit_metadata(|m| m["max_context"] = json!(0)).join()),
            runtime_error!(ErrorKind::InvalidValue { .. }),
            "max_context",
        ),
        case(
            "tllm: vocab_size disagrees with token_embd",
            tllm(parts.clone().edit_metadata(|m| m["vocab_size"] = json!(999)).join()),
            runtime_error!(ErrorKind::ShapeMismatch { .. }),
            "tensor token_embd",
        ),
        case(
            "tllm: NaN weight, verify_tensors",
            tllm(nan_in_norm.clone()),
            runtime_error!(ErrorKind::NonFinite { .. }),
            "tensor layers.0.attn_norm",
        ),
        case(
            "tllm: NaN weight, Session::eval",
            Input::Tllm { bytes: nan_in_norm, run: EVAL_WITHOUT_VERIFY },
            runtime_error!(ErrorKind::NonFinite { .. }),
            "logits",
        ),
        case(
            "tllm: Q8_0 scale +inf, verify_tensors",
            tllm(inf_scale.clone()),
            runtime_error!(ErrorKind::NonFinite { .. }),
            "tensor layers.0.attn_q",
        ),
        case(
            "tllm: Q8_0 scale +inf, Session::eval",
            Input::Tllm { bytes: inf_scale, run: EVAL_WITHOUT_VERIFY },
            runtime_error!(ErrorKind::NonFinite { .. }),
            "logits",
        ),
        case(
            "tllm: tokenizer section not UTF-8",
            tllm(TllmParts { tokenizer: b"{\"version\": \"1.\xff\xfe\"}".to_vec(), ..parts.clone() }.join()),
            runtime_error!(ErrorKind::Tokenizer { .. }),
            "invalid tokenizer.json: invalid unicode code point",
        ),
        case(
            "tllm: tokenizer section not JSON",
            tllm(TllmParts { tokenizer: b"this is not JSON".to_vec(), ..parts.clone() }.join()),
            runtime_error!(ErrorKind::Tokenizer { .. }),
            "invalid tokenizer.json",
        ),
        // The tokenizer loads, and encoding the token's text gives id 1000 (see far_token), so
        // the session is what rejects it.
        case(
            "tllm: added token id 10^6, encoded and evaluated",
            Input::Tllm { bytes: far_token, run: TllmRun { verify: true, prompt: "<|far_away|>" } },
            runtime_error!(ErrorKind::InvalidToken { .. }),
            "token id 1000 is outside the vocabulary of 1000 tokens",
        ),
        case(
            "tllm: tensor range beyond the data section",
            tllm(parts.clone().edit_entry("layers.0.attn_q", |entry| entry.offset += (attn_q_length * 1000).next_multiple_of(64)).join()),
            runtime_error!(ErrorKind::OutOfBounds { .. }),
            "tensor layers.0.attn_q",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Building GGUF files
// ---------------------------------------------------------------------------------------------

/// Byte positions of the parts of a GGUF file, found by walking it: a 24-byte header (magic,
/// version, tensor count, metadata entry count), the metadata entries, the tensor records, then
/// the data section on the next multiple of the alignment.
struct GgufLayout {
    /// Per metadata entry: key, offset of the key's length field, offset of the value.
    entries: Vec<(String, usize, usize)>,
    /// Per tensor record: name, offset of its dimension count, offset of its type.
    tensors: Vec<(String, usize, usize)>,
    /// End of the metadata entries, where the tensor table starts.
    table_start: usize,
    /// End of the tensor table.
    table_end: usize,
    /// Start of the data section (the seed has no `general.alignment`, so 32).
    data_start: usize,
}

const GGUF_ALIGNMENT: usize = 32;

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn read_gguf_string(bytes: &[u8], at: usize) -> (String, usize) {
    let len = get_u64(bytes, at) as usize;
    (String::from_utf8(bytes[at + 8..at + 8 + len].to_vec()).unwrap(), at + 8 + len)
}

/// Returns the offset after a value of GGUF type `value_type` at `at`.
fn skip_gguf_value(bytes: &[u8], value_type: u32, at: usize) -> usize {
    match value_type {
        0 | 1 | 7 => at + 1,
        2 | 3 => at + 2,
        4..=6 => at + 4,
        10..=12 => at + 8,
        8 => at + 8 + get_u64(bytes, at) as usize,
        9 => {
            let element_type = get_u32(bytes, at);
            let count = get_u64(bytes, at + 4);
            (0..count).fold(at + 12, |position, _| skip_gguf_value(bytes, element_type, position))
        }
        other => panic!("the seed has value type {other}"),
    }
}

impl GgufLayout {
    fn of(bytes: &[u8]) -> GgufLayout {
        let tensor_count = get_u64(bytes, 8);
        let entry_count = get_u64(bytes, 16);
        let mut position = 24;
        let mut entries = Vec::new();
        for _ in 0..entry_count {
            let (key, after_key) = read_gguf_string(bytes, position);
            let value_type = get_u32(bytes, after_key);
            entries.push((key, position, after_key + 4));
            position = skip_gguf_value(bytes, value_type, after_key + 4);
        }
        let table_start = position;
        let mut tensors = Vec::new();
        for _ in 0..tensor_count {
            let (name, after_name) = read_gguf_string(bytes, position);
            let n_dims = get_u32(bytes, after_name) as usize;
            let type_at = after_name + 4 + 8 * n_dims;
            tensors.push((name, after_name, type_at));
            position = type_at + 4 + 8;
        }
        GgufLayout { entries, tensors, table_start, table_end: position, data_start: position.next_multiple_of(GGUF_ALIGNMENT) }
    }

    fn value_at(&self, key: &str) -> usize {
        self.entries.iter().find(|(k, _, _)| k == key).unwrap_or_else(|| panic!("the seed has key {key}")).2
    }

    fn key_at(&self, key: &str) -> usize {
        self.entries.iter().find(|(k, _, _)| k == key).unwrap().1
    }

    fn tensor(&self, name: &str) -> (usize, usize) {
        let (_, n_dims_at, type_at) = self.tensors.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("the seed has tensor {name}"));
        (*n_dims_at, *type_at)
    }

    /// Offset of the data of tensor `name` in the file.
    fn tensor_data(&self, bytes: &[u8], name: &str) -> usize {
        let (_, type_at) = self.tensor(name);
        self.data_start + get_u64(bytes, type_at + 4) as usize
    }
}

/// Encodes a metadata entry: key, value type, value bytes.
fn gguf_entry(key: &str, value_type: u32, value: &[u8]) -> Vec<u8> {
    let mut out = (key.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&value_type.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// The seed with `entry` appended to its metadata and the data section moved to the next
/// multiple of the alignment, followed by `trailing` zero bytes.
fn gguf_with_entry(seed: &[u8], layout: &GgufLayout, entry: &[u8], trailing: usize) -> Vec<u8> {
    let mut out = seed[..layout.table_start].to_vec();
    put_u64(&mut out, 16, layout.entries.len() as u64 + 1);
    out.extend_from_slice(entry);
    out.extend_from_slice(&seed[layout.table_start..layout.table_end]);
    out.resize(out.len().next_multiple_of(GGUF_ALIGNMENT), 0);
    out.extend_from_slice(&seed[layout.data_start..]);
    out.resize(out.len() + trailing, 0);
    out
}

/// A metadata value of `levels` arrays nested in each other, each with one element, the
/// innermost an empty array of u8. The value type of the entry itself is the array type.
fn nested_arrays(levels: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 1..levels {
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out
}

fn gguf_cases(seed: &[u8]) -> Vec<Case> {
    let layout = GgufLayout::of(seed);
    let edited = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = seed.to_vec();
        edit(&mut bytes);
        Input::Gguf(bytes)
    };
    let (embd_n_dims_at, _) = layout.tensor("token_embd.weight");
    let (_, output_norm_type_at) = layout.tensor("output_norm.weight");
    let (_, attn_norm_type_at) = layout.tensor("blk.0.attn_norm.weight");
    let attn_norm_data = layout.tensor_data(seed, "blk.0.attn_norm.weight");
    let with_entry = |entry: Vec<u8>| Input::Gguf(gguf_with_entry(seed, &layout, &entry, 0));

    // Eight nested arrays whose element counts are each the most that the rest of the file
    // could hold, then a ninth level, which is one too deep. 4 MiB of trailing zeros make the
    // file large enough for a reservation per level to show against the memory bound.
    let deep_counts = {
        let mut bytes = gguf_with_entry(seed, &layout, &gguf_entry("general.hostile_nested", 9, &nested_arrays(10)), 4 << 20);
        let value_at = GgufLayout::of(seed).table_start + 8 + "general.hostile_nested".len() + 4;
        for level in 0..8 {
            let count_at = value_at + 12 * level + 4;
            let remaining = (bytes.len() - (count_at + 8)) as u64;
            put_u64(&mut bytes, count_at, remaining / 12);
        }
        Input::Gguf(bytes)
    };
    // A metadata entry count at the most that the file length allows (13 bytes per entry).
    let entries_at_limit = {
        let mut bytes = seed.to_vec();
        bytes.resize(seed.len() + (4 << 20), 0);
        let remaining = (bytes.len() - 24) as u64;
        put_u64(&mut bytes, 16, remaining / 13);
        Input::Gguf(bytes)
    };
    // A tensor count at the most that the file length allows (24 bytes per record).
    let tensors_at_limit = {
        let mut bytes = seed.to_vec();
        bytes.resize(seed.len() + (4 << 20), 0);
        let remaining = (bytes.len() - 24) as u64;
        put_u64(&mut bytes, 8, remaining / 24);
        Input::Gguf(bytes)
    };

    vec![
        case("gguf: truncated in the metadata", Input::Gguf(seed[..10_000].to_vec()), gguf_error!(GgufError::Truncated { .. }), "tokenizer.ggml.tokens"),
        case(
            "gguf: truncated in the tensor data",
            Input::Gguf(seed[..100_000].to_vec()),
            gguf_error!(GgufError::TensorOutOfBounds { .. }),
            "blk.0.ffn_down.weight",
        ),
        case("gguf: bad magic", edited(&|b| b[..4].copy_from_slice(b"GGUG")), gguf_error!(GgufError::InvalidMagic { .. }), "not a GGUF file"),
        case("gguf: metadata entry count 2^40", edited(&|b| put_u64(b, 16, 1 << 40)), gguf_error!(GgufError::CountTooLarge { .. }), "metadata entry count"),
        // Both counts pass the check against the file length, so the reader takes the bytes
        // after the real entries as more entries, until a length runs past the end.
        case(
            "gguf: metadata entry count at the file limit",
            entries_at_limit,
            gguf_error!(GgufError::Truncated { .. }),
            "key of metadata entry 19",
        ),
        case("gguf: tensor count at the file limit", tensors_at_limit, gguf_error!(GgufError::Truncated { .. }), "name of tensor 12"),
        case(
            "gguf: string length u64::MAX",
            edited(&|b| put_u64(b, layout.value_at("general.architecture"), u64::MAX)),
            gguf_error!(GgufError::Truncated { .. }),
            "general.architecture",
        ),
        case(
            "gguf: array length 2^60",
            edited(&|b| put_u64(b, layout.value_at("tokenizer.ggml.tokens") + 4, 1 << 60)),
            gguf_error!(GgufError::CountTooLarge { .. }),
            "tokenizer.ggml.tokens",
        ),
        case(
            "gguf: arrays nested 9 deep",
            with_entry(gguf_entry("general.hostile_nested", 9, &nested_arrays(10))),
            gguf_error!(GgufError::ArrayTooDeep { .. }),
            "general.hostile_nested",
        ),
        case("gguf: arrays nested 9 deep, maximum counts", deep_counts, gguf_error!(GgufError::ArrayTooDeep { .. }), "general.hostile_nested"),
        case(
            "gguf: key not UTF-8",
            edited(&|b| b[layout.key_at("general.architecture") + 8] = 0xFF),
            gguf_error!(GgufError::InvalidUtf8 { .. }),
            "key of metadata entry 0",
        ),
        case("gguf: 5 dimensions", edited(&|b| put_u32(b, embd_n_dims_at, 5)), gguf_error!(GgufError::TooManyDims { .. }), "token_embd.weight"),
        case(
            "gguf: dims product overflows",
            edited(&|b| {
                put_u64(b, embd_n_dims_at + 4, 1 << 40);
                put_u64(b, embd_n_dims_at + 12, 1 << 40);
            }),
            gguf_error!(GgufError::ShapeOverflow { .. }),
            "token_embd.weight",
        ),
        case(
            "gguf: tensor offset beyond the data",
            edited(&|b| put_u64(b, output_norm_type_at + 4, 1 << 40)),
            gguf_error!(GgufError::TensorOutOfBounds { .. }),
            "output_norm.weight",
        ),
        case(
            "gguf: alignment 0",
            with_entry(gguf_entry("general.alignment", 4, &0u32.to_le_bytes())),
            gguf_error!(GgufError::InvalidAlignment { .. }),
            "general.alignment is 0",
        ),
        case(
            "gguf: alignment 48",
            with_entry(gguf_entry("general.alignment", 4, &48u32.to_le_bytes())),
            gguf_error!(GgufError::InvalidAlignment { .. }),
            "general.alignment is 48",
        ),
        case(
            "gguf: bool byte 2",
            with_entry(gguf_entry("general.hostile_flag", 7, &[2])),
            gguf_error!(GgufError::InvalidBool { .. }),
            "general.hostile_flag",
        ),
        case(
            "gguf: unknown tensor type 200",
            edited(&|b| put_u32(b, attn_norm_type_at, 200)),
            gguf_error!(GgufError::UnknownTensorType { .. }),
            "blk.0.attn_norm.weight",
        ),
        case(
            "gguf: tensor type I8",
            edited(&|b| put_u32(b, attn_norm_type_at, 24)),
            convert_error!(ConvertError::UnsupportedTensorType { .. }),
            "blk.0.attn_norm.weight",
        ),
        case(
            "gguf: NaN in a tensor",
            edited(&|b| b[attn_norm_data..attn_norm_data + 4].copy_from_slice(&f32::NAN.to_le_bytes())),
            convert_error!(ConvertError::NonFinite { .. }),
            "blk.0.attn_norm.weight",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Building Hugging Face directories
// ---------------------------------------------------------------------------------------------

/// A copy of the llama-gqa fixture directory (without its reference logits) at `model/` in a
/// new temporary directory, after `edit`.
fn hugging_face(edit: impl FnOnce(&Path)) -> Input {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("model");
    fs::create_dir(&dir).unwrap();
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        fs::copy(fixtures_dir().join("models/llama-gqa").join(file), dir.join(file)).unwrap();
    }
    edit(&dir);
    Input::HuggingFace(temp)
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("config.json");
    let mut config: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// Rewrites the JSON header of model.safetensors through `edit`; the data stays as it is.
fn edit_safetensors_header(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let path = dir.join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    let header_len = get_u64(&bytes, 0) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    edit(&mut header);
    let new_header = serde_json::to_vec(&header).unwrap();
    let mut out = (new_header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&new_header);
    out.extend_from_slice(&bytes[8 + header_len..]);
    fs::write(&path, out).unwrap();
}

fn edit_file(path: PathBuf, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(&path).unwrap();
    edit(&mut bytes);
    fs::write(&path, bytes).unwrap();
}

fn hugging_face_cases() -> Vec<Case> {
    vec![
        case(
            "hf: safetensors header length 2^40",
            hugging_face(|dir| edit_file(dir.join("model.safetensors"), |b| put_u64(b, 0, 1 << 40))),
            convert_error!(ConvertError::Safetensors { .. }),
            "model.safetensors",
        ),
        case(
            "hf: safetensors header not JSON",
            hugging_face(|dir| edit_file(dir.join("model.safetensors"), |b| b[8] = b'x')),
            convert_error!(ConvertError::Safetensors { .. }),
            "model.safetensors",
        ),
        case(
            "hf: data_offsets beyond the file",
            hugging_face(|dir| {
                edit_safetensors_header(dir, |h| {
                    let start = h["model.norm.weight"]["data_offsets"][0].as_u64().unwrap();
                    h["model.norm.weight"]["shape"] = json!([64_000]);
                    h["model.norm.weight"]["data_offsets"] = json!([start, start + 256_000]);
                })
            }),
            convert_error!(ConvertError::Safetensors { .. }),
            "model.norm.weight",
        ),
        case(
            "hf: data_offsets disagree with shape",
            hugging_face(|dir| edit_safetensors_header(dir, |h| h["model.norm.weight"]["shape"] = json!([65]))),
            convert_error!(ConvertError::Safetensors { .. }),
            "model.norm.weight",
        ),
        case(
            "hf: dtype I64",
            hugging_face(|dir| {
                edit_safetensors_header(dir, |h| {
                    h["model.norm.weight"]["dtype"] = json!("I64");
                    h["model.norm.weight"]["shape"] = json!([32]);
                })
            }),
            convert_error!(ConvertError::UnsupportedTensorType { .. }),
            "model.norm.weight",
        ),
        case(
            "hf: NaN weight",
            hugging_face(|dir| {
                let path = dir.join("model.safetensors");
                let bytes = fs::read(&path).unwrap();
                let header_len = get_u64(&bytes, 0) as usize;
                let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
                let at = 8 + header_len + header["model.norm.weight"]["data_offsets"][0].as_u64().unwrap() as usize + 4 * 5;
                edit_file(path, |b| b[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes()));
            }),
            convert_error!(ConvertError::NonFinite { .. }),
            "model.norm.weight",
        ),
        case(
            "hf: config.json not UTF-8",
            hugging_face(|dir| {
                edit_file(dir.join("config.json"), |b| {
                    let at = b.windows(5).position(|w| w == b"Llama").unwrap();
                    b[at + 1] = 0xFF;
                })
            }),
            convert_error!(ConvertError::InvalidJson { .. }),
            "config.json: invalid JSON: invalid unicode code point",
        ),
        case(
            "hf: num_hidden_layers 10^9",
            hugging_face(|dir| edit_config(dir, |c| c["num_hidden_layers"] = json!(1_000_000_000))),
            convert_error!(ConvertError::InvalidField { .. }),
            "num_hidden_layers",
        ),
        case(
            "hf: hidden_size negative",
            hugging_face(|dir| edit_config(dir, |c| c["hidden_size"] = json!(-64))),
            convert_error!(ConvertError::InvalidField { .. }),
            "hidden_size",
        ),
        case(
            "hf: tinyllm_layers of the wrong length",
            hugging_face(|dir| {
                edit_config(dir, |c| c["tinyllm_layers"] = json!([{"n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "ffn_dim": 176}]))
            }),
            convert_error!(ConvertError::InvalidField { .. }),
            "tinyllm_layers",
        ),
        case(
            "hf: tokenizer.json not JSON",
            hugging_face(|dir| fs::write(dir.join("tokenizer.json"), b"this is not JSON").unwrap()),
            convert_error!(ConvertError::InvalidJson { .. }),
            "tokenizer.json",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Extra heap bytes a case may use beyond `8 * input_len`.
const MEMORY_SLACK: usize = 8 << 20;

#[test]
fn hostile_files_rejected_with_bounded_memory() {
    let tllm_base = converted_fixture();
    let seed = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/gguf_file/llama-gqa-1layer.gguf")).unwrap();
    let mut cases = tllm_cases(&tllm_base);
    cases.extend(gguf_cases(&seed));
    cases.extend(hugging_face_cases());
    assert!(cases.len() >= 30, "the table has {} cases", cases.len());

    let mut problems = Vec::new();
    println!("{:<48} {:>9} {:>10}  message", "case", "bytes", "peak");
    for Case { name, input, expected, message_contains } in cases {
        let (input_len, peak, outcome) = run_case(input);
        let limit = 8 * input_len + MEMORY_SLACK;
        let message = match &outcome {
            Ok(failure) => failure.to_string(),
            Err(problem) => problem.clone(),
        };
        println!("{name:<48} {input_len:>9} {peak:>10}  {message}");
        match outcome {
            Err(problem) => problems.push(format!("{name}: {problem}")),
            Ok(failure) => {
                if !(expected.matches)(&failure) {
                    problems.push(format!("{name}: expected {}, got {failure:?}", expected.pattern));
                }
                if !message.contains(message_contains) {
                    problems.push(format!("{name}: the message does not contain {message_contains:?}: {message}"));
                }
            }
        }
        if peak > limit {
            problems.push(format!("{name}: peak heap use {peak} bytes is above the limit of {limit} bytes for {input_len} input bytes"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
