//! Helpers shared by the C API tests: the built library, a C compiler, converted models and the
//! Rust API's reference output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tinyllm::{ChatMessage, Model, Sampler, SamplerParams, Session, TextStream, Tokenizer};
use tinyllm_convert::{convert, ConvertOptions};

/// Returns the ffi crate's folder.
pub fn ffi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the profile folder of the target directory (target/release), found from the test
/// binary, which lives in its deps/ subfolder.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    exe.parent().and_then(Path::parent).expect("test binary inside target/PROFILE/deps").to_path_buf()
}

/// Returns the shared library cargo built for this test run. It is the copy in deps/, because
/// `cargo test` does not update the one in the profile folder, which `cargo build` writes.
pub fn built_shared_library() -> PathBuf {
    let path = profile_dir().join("deps/libtinyllm_ffi.so");
    assert!(path.is_file(), "{} is missing; run the tests through cargo test -p tinyllm-ffi", path.display());
    path
}

/// Returns the static library cargo built for this test run, from deps/ like the shared one.
pub fn built_static_library() -> PathBuf {
    let path = profile_dir().join("deps/libtinyllm_ffi.a");
    assert!(path.is_file(), "{} is missing; run the tests through cargo test -p tinyllm-ffi", path.display());
    path
}

/// Returns the folder for what this test binary builds and converts, emptied when it starts:
/// target/PROFILE/ffi-tests/BINARY. It lives in the target directory rather than in a temporary
/// folder because statics are never dropped, so a temporary folder held by one would be left
/// behind after every run.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let stem = exe.file_stem().unwrap().to_string_lossy();
        let binary = stem.split('-').next().unwrap_or("tests");
        let dir = profile_dir().join("ffi-tests").join(binary);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap_or_else(|error| panic!("cannot empty {}: {error}", dir.display()));
        }
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A library folder laid out as install.sh does, with links to the built files:
/// lib/libtinyllm.so.0 (the SONAME), lib/libtinyllm.so and lib/libtinyllm.a. The headers stay
/// in ffi/include.
pub struct Staged {
    pub lib: PathBuf,
}

/// Stages the built library once per test process.
pub fn staged() -> &'static Staged {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    STAGED.get_or_init(|| {
        let lib = work_dir().join("staged/lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::os::unix::fs::symlink(built_shared_library(), lib.join("libtinyllm.so.0")).unwrap();
        std::os::unix::fs::symlink("libtinyllm.so.0", lib.join("libtinyllm.so")).unwrap();
        std::os::unix::fs::symlink(built_static_library(), lib.join("libtinyllm.a")).unwrap();
        Staged { lib }
    })
}

/// Returns the C compiler: $CC or cc.
pub fn c_compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Returns the C++ compiler: $CXX or c++.
pub fn cxx_compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".to_string())
}

/// Checks that `program --version` runs, and prints why the calling test skips when it does not.
pub fn have_tool(program: &str, test: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok_and(|output| output.status.success());
    if !found {
        eprintln!("skipping {test}: {program} not found (install it to run this test)");
    }
    found
}

/// Compiles and links `sources` against the staged shared library into `output`, with warnings
/// as errors. `compiler` is a C or C++ compiler; `flags` go before the sources.
pub fn build_program(compiler: &str, sources: &[PathBuf], output: &Path, flags: &[&str]) {
    let staged = staged();
    let mut command = Command::new(compiler);
    command.args(["-O1", "-g", "-Wall", "-Wextra", "-Werror"]).args(flags);
    command.arg("-I").arg(ffi_dir().join("include"));
    command.args(sources).arg("-o").arg(output);
    command.arg(format!("-L{}", staged.lib.display())).arg("-ltinyllm");
    command.arg(format!("-Wl,-rpath,{}", staged.lib.display())).arg("-lpthread");
    run_ok(&mut command, "compiling");
}

/// Runs `command`, failing the test with its output when it does not exit with status 0.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|error| panic!("{what}: cannot run {command:?}: {error}"));
    if !output.status.success() {
        panic!(
            "{what}: {command:?} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Returns the shared inputs folder (`TINYLLM_SHARED`, default ../shared beside the workspace),
/// or `None` after printing why the calling test skips.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TINYLLM_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => ffi_dir().join("../../shared"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping {test}: shared inputs not found at {} (set TINYLLM_SHARED)", dir.display());
        None
    }
}

/// The tiny fixture models, converted from Hugging Face safetensors.
pub const FIXTURES: [&str; 4] = ["llama-gqa", "llama-odd", "qwen2", "qwen3"];

/// Returns the folder of converted models, shared by the test binaries:
/// target/PROFILE/ffi-tests/models.
fn models_dir() -> PathBuf {
    let dir = profile_dir().join("ffi-tests/models");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Converts `input` to an f32 .tllm file named `name` in the models folder, unless a file
/// converted after this test binary was built is already there. A rebuilt binary (after a
/// change to the runtime or the converter) converts again.
fn converted(input: &Path, name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = models_dir().join(name);
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let built = modified(&std::env::current_exe().unwrap());
    let fresh = matches!((modified(&output), built), (Some(model), Some(built)) if model > built);
    if !fresh {
        convert(input, &output, &ConvertOptions::default()).unwrap_or_else(|error| panic!("converting {}: {error}", input.display()));
    }
    output
}

/// Fixture `name` (tests/fixtures/models/NAME) converted to an f32 .tllm file.
pub fn fixture_model(name: &str) -> PathBuf {
    converted(&ffi_dir().join("../tests/fixtures/models").join(name), &format!("{name}.tllm"))
}

/// SmolLM2-135M-Instruct from the shared inputs, converted to f32, or `None` after printing why
/// the calling test skips.
pub fn smollm2(test: &str) -> Option<PathBuf> {
    let gguf = shared_dir(test)?.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.is_file() {
        eprintln!("skipping {test}: {} not found", gguf.display());
        return None;
    }
    Some(converted(&gguf, "smollm2-f32.tllm"))
}

/// What the Rust API generates for one prompt: the same steps as the C example `generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    pub ids: Vec<u32>,
    pub text: String,
}

/// Greedy generation through the Rust API: the prompt as a user message in the chat template,
/// up to `max_tokens` tokens, stopping at an end-of-sequence token.
pub fn rust_generate(model_path: &Path, prompt: &str, max_tokens: usize) -> Generation {
    let model = Model::open(model_path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let text = tokenizer.apply_chat_template(&[ChatMessage::new("user", prompt)], true).unwrap();
    let prompt_ids = tokenizer.encode(&text, false).unwrap();
    let mut session = Session::new(&model, None);
    let mut sampler = Sampler::new(SamplerParams::greedy());
    let (ids, text) = rust_continue(&mut session, &tokenizer, &mut sampler, &prompt_ids, max_tokens);
    Generation { prompt_ids, ids, text }
}

/// Evaluates `new_tokens`, then samples until an end-of-sequence token, `max_tokens` tokens or
/// a full context, as tinyllm_generate() does; returns the tokens and their streamed text.
pub fn rust_continue(session: &mut Session<'_>, tokenizer: &Tokenizer, sampler: &mut Sampler, new_tokens: &[u32], max_tokens: usize) -> (Vec<u32>, String) {
    let eos = session.model().metadata().eos_token_ids.clone();
    session.eval(new_tokens).unwrap();
    let mut stream = TextStream::new();
    let mut ids = Vec::new();
    let mut text = String::new();
    while ids.len() < max_tokens {
        let token = sampler.sample(session.logits(), session.tokens());
        if eos.contains(&token) {
            break;
        }
        ids.push(token);
        text.push_str(&stream.push(tokenizer, token).unwrap());
        if ids.len() == max_tokens || session.position() == session.context() {
            break;
        }
        session.eval(&[token]).unwrap();
    }
    (ids, text)
}

/// Parses a line `LABEL: 1 2 3` of a program's standard error.
pub fn ids_line(stderr: &str, label: &str) -> Vec<u32> {
    let prefix = format!("{label}:");
    let line = stderr.lines().find(|line| line.starts_with(&prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in:\n{stderr}"));
    line[prefix.len()..].split_whitespace().map(|id| id.parse().expect("a token id")).collect()
}
