//! The `sft`, `distill` and `topk` commands of `tinyllm-train`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{RunConfig, StudentInit, VocabularyChoice};
use crate::error::{Result, TrainError};
use crate::loss::topk_cache::TopkCache;
use crate::model::student::student_from_teacher;
use crate::model::vocab::{self, prune_to, VocabMap};
use crate::model::{load::load, save, Decoder};
use crate::train::batch::Example;
use crate::train::dataset::read_examples;
use crate::train::{final_dir, Distillation, RunSummary, TeacherSignal, Trainer};

/// Returns the device training runs on: the first CUDA device when built with the `cuda` feature,
/// else the CPU.
pub fn device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        return Ok(Device::new_cuda(0)?);
    }
    #[allow(unreachable_code)]
    Ok(Device::Cpu)
}

fn read_data(config: &RunConfig, model: &Decoder) -> Result<(Vec<Example>, Vec<Example>)> {
    let d = &config.data;
    let read = |path: &Path| read_examples(path, d.format, d.seq_len, &model.metadata, model.tokenizer_json.as_deref());
    let train = read(&d.train)?;
    let dev = match &d.dev {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    Ok((train, dev))
}

fn trainer(config: &RunConfig, model: Decoder, teacher: TeacherSignal, train: Vec<Example>, dev: Vec<Example>, quiet: bool) -> Trainer {
    let d = &config.distill;
    Trainer {
        model,
        teacher,
        distillation: Distillation { divergence: d.divergence, temperature: d.temperature, alpha: d.alpha },
        train,
        dev,
        options: config.train.clone(),
        seq_len: config.data.seq_len,
        out_dir: config.output.dir.clone(),
        quiet,
    }
}

/// Writes the final model: a Hugging Face directory `final/` and, when asked, `model.tllm`.
fn save_final(config: &RunConfig, model: &Decoder) -> Result<Vec<PathBuf>> {
    let dir = final_dir(&config.output.dir);
    save::save_hf(model, &dir)?;
    let mut written = vec![dir];
    if config.output.tllm {
        let path = config.output.dir.join("model.tllm");
        save::save_tllm(model, &path)?;
        written.push(path);
    }
    Ok(written)
}

fn report(summary: &RunSummary, written: &[PathBuf]) {
    eprintln!("trained {} of {} steps", summary.steps, summary.total_steps);
    for path in written {
        eprintln!("wrote {}", path.display());
    }
}

/// Reads the run configuration and removes what a killed earlier run left in its output
/// folders: temporary files and folders of interrupted writes.
fn read_config(config_path: &Path) -> Result<RunConfig> {
    let config = RunConfig::read(config_path)?;
    crate::atomic::remove_stale(&config.output.dir);
    crate::atomic::remove_stale(&config.cache_dir());
    Ok(config)
}

/// Runs supervised fine-tuning as configured in `config_path`.
pub fn sft(config_path: &Path, quiet: bool) -> Result<()> {
    let config = read_config(config_path)?;
    let model_path = config.model.as_ref().map(|m| m.path.clone()).ok_or_else(|| TrainError::config(config_path, "[model] path is missing; sft needs the model to fine-tune"))?;
    let model = load(&model_path, DType::F32, &device()?)?;
    let (train, dev) = read_data(&config, &model)?;
    let mut run = trainer(&config, model, TeacherSignal::None, train, dev, quiet);
    let summary = run.run(None)?;
    let written = save_final(&config, &run.model)?;
    report(&summary, &written);
    Ok(())
}

fn make_student(config: &RunConfig, config_path: &Path, teacher: &Decoder) -> Result<Decoder> {
    let section = config.student.as_ref().ok_or_else(|| TrainError::config(config_path, "[student] is missing; set init = \"from_teacher\" or init = \"load\" with a path"))?;
    match section.init {
        StudentInit::Load => {
            let path = section.path.as_ref().ok_or_else(|| TrainError::config(config_path, "student.path is missing; init = \"load\" needs the student model"))?;
            load(path, DType::F32, teacher.device())
        }
        StudentInit::FromTeacher => {
            let all: Vec<usize> = (0..teacher.metadata.layers.len()).collect();
            let layers = section.layers.clone().unwrap_or(all);
            student_from_teacher(teacher, &layers, section.ffn_dim, section.channel_rule)
        }
    }
}

/// Loads the top-k cache of `examples` from `path`, or builds and writes it with the teacher.
/// With `student_vocab` the cache covers the student's tokens; `examples` are in teacher ids.
fn ensure_cache(config: &RunConfig, teacher: &Decoder, student_vocab: Option<&VocabMap>, examples: &[Example], path: &Path, quiet: bool) -> Result<TopkCache> {
    let vocab_size = student_vocab.map_or(teacher.metadata.vocab_size, |map| map.len() as u32);
    if path.exists() {
        let cache = TopkCache::read(path)?;
        cache.check_matches(examples, vocab_size, path)?;
        if cache.k() != config.distill.top_k {
            return Err(TrainError::TopkCache { path: path.to_path_buf(), message: format!("contains k = {}, but the configuration sets top_k = {}; delete the file to rebuild it", cache.k(), config.distill.top_k) });
        }
        return Ok(cache);
    }
    let progress = if quiet { ProgressBar::hidden() } else { ProgressBar::new(examples.len() as u64) };
    progress.set_style(ProgressStyle::with_template("teacher top-k {bar:40} {pos}/{len} examples {elapsed_precise}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let cache = TopkCache::build_for(teacher, student_vocab, examples, config.distill.top_k, config.distill.cache_dtype, |done| progress.set_position(done as u64))?;
    progress.finish_and_clear();
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| TrainError::io(path, e))?;
    cache.write(path)?;
    Ok(cache)
}

fn check_vocabularies(teacher: &Decoder, student: &Decoder) -> Result<()> {
    if teacher.metadata.vocab_size != student.metadata.vocab_size {
        return Err(TrainError::Incompatible {
            message: format!(
                "the teacher's vocabulary has {} tokens and the student's {}; distillation needs one shared tokenizer, or student.vocabulary = \"data\" to prune the teacher's",
                teacher.metadata.vocab_size, student.metadata.vocab_size
            ),
        });
    }
    Ok(())
}

/// Everything a distillation run needs: the teacher, the student when built, the data in the
/// teacher's ids and, with a pruned vocabulary, the id map.
struct DistillSetup {
    teacher: Decoder,
    train: Vec<Example>,
    dev: Vec<Example>,
    vocab: Option<VocabMap>,
}

/// Builds the vocabulary map of a `student.vocabulary = "data"` run, or returns `None`.
fn data_vocabulary(config: &RunConfig, teacher: &Decoder, train: &[Example], dev: &[Example]) -> Result<Option<VocabMap>> {
    let Some(section) = config.student.as_ref().filter(|s| s.vocabulary == VocabularyChoice::Data) else { return Ok(None) };
    if section.init != StudentInit::FromTeacher {
        return Err(TrainError::Incompatible { message: "student.vocabulary = \"data\" prunes the teacher's vocabulary, so it needs init = \"from_teacher\"; a loaded student keeps its own".into() });
    }
    Ok(Some(vocab::data_vocabulary(teacher, &[train, dev])?))
}

fn prepare_distill(config: &RunConfig, config_path: &Path) -> Result<DistillSetup> {
    let mut teacher = load(config.teacher_path(config_path)?, DType::F32, &device()?)?;
    teacher.freeze();
    let (train, dev) = read_data(config, &teacher)?;
    let vocab = data_vocabulary(config, &teacher, &train, &dev)?;
    Ok(DistillSetup { teacher, train, dev, vocab })
}

/// Builds the top-k caches that are missing, or `None` when `top_k = 0`.
fn caches(config: &RunConfig, setup: &DistillSetup, quiet: bool) -> Result<Option<(TopkCache, Option<TopkCache>)>> {
    if config.distill.top_k == 0 {
        return Ok(None);
    }
    let dir = config.cache_dir();
    let vocab = setup.vocab.as_ref();
    let train_cache = ensure_cache(config, &setup.teacher, vocab, &setup.train, &dir.join("train.topk"), quiet)?;
    let dev_cache = if setup.dev.is_empty() { None } else { Some(ensure_cache(config, &setup.teacher, vocab, &setup.dev, &dir.join("dev.topk"), quiet)?) };
    Ok(Some((train_cache, dev_cache)))
}

/// Computes the teacher's top-k caches for the configured data without training.
pub fn topk(config_path: &Path, quiet: bool) -> Result<()> {
    let mut config = read_config(config_path)?;
    if config.distill.top_k == 0 {
        config.distill.top_k = 64;
    }
    let setup = prepare_distill(&config, config_path)?;
    caches(&config, &setup, quiet)?;
    eprintln!("teacher top-k caches are in {}", config.cache_dir().display());
    Ok(())
}

/// `examples` in the student's ids.
fn to_student(vocab: &VocabMap, examples: &[Example]) -> Result<Vec<Example>> {
    examples
        .iter()
        .enumerate()
        .map(|(index, example)| {
            vocab.to_student(example).map_err(|id| TrainError::Incompatible { message: format!("example {} uses token {id}, which the pruned vocabulary lacks", index + 1) })
        })
        .collect()
}

/// Runs distillation as configured in `config_path`.
pub fn distill(config_path: &Path, quiet: bool) -> Result<()> {
    let config = read_config(config_path)?;
    let setup = prepare_distill(&config, config_path)?;
    let caches = caches(&config, &setup, quiet)?;
    let mut student = make_student(&config, config_path, &setup.teacher)?;
    let DistillSetup { teacher, mut train, mut dev, vocab } = setup;
    if let Some(vocab) = &vocab {
        // data_vocabulary accepts only init = "from_teacher", so the student has the
        // teacher's tokenizer and the map fits it.
        student = prune_to(&student, vocab)?;
        if !quiet {
            eprintln!("student vocabulary: {} of the teacher's {} tokens", vocab.len(), vocab.teacher_vocab());
        }
        train = to_student(vocab, &train)?;
        dev = to_student(vocab, &dev)?;
    } else {
        check_vocabularies(&teacher, &student)?;
    }
    let signal = match caches {
        // The cache replaces the teacher, whose weights are dropped here.
        Some((train_cache, dev_cache)) => TeacherSignal::Topk { train: train_cache, dev: dev_cache },
        None => TeacherSignal::Online { teacher, vocab },
    };
    let mut run = trainer(&config, student, signal, train, dev, quiet);
    let summary = run.run(None)?;
    let written = save_final(&config, &run.model)?;
    report(&summary, &written);
    Ok(())
}
