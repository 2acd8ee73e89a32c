//! The `sft`, `distill` and `topk` commands of `tinyllm-train`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{RunConfig, StudentInit};
use crate::error::{Result, TrainError};
use crate::loss::topk_cache::TopkCache;
use crate::model::student::student_from_teacher;
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
fn ensure_cache(config: &RunConfig, teacher: &Decoder, examples: &[Example], path: &Path, quiet: bool) -> Result<TopkCache> {
    if path.exists() {
        let cache = TopkCache::read(path)?;
        cache.check_matches(examples, teacher.metadata.vocab_size, path)?;
        if cache.k() != config.distill.top_k {
            return Err(TrainError::TopkCache { path: path.to_path_buf(), message: format!("contains k = {}, but the configuration sets top_k = {}; delete the file to rebuild it", cache.k(), config.distill.top_k) });
        }
        return Ok(cache);
    }
    let progress = if quiet { ProgressBar::hidden() } else { ProgressBar::new(examples.len() as u64) };
    progress.set_style(ProgressStyle::with_template("teacher top-k {bar:40} {pos}/{len} examples {elapsed_precise}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let cache = TopkCache::build(teacher, examples, config.distill.top_k, config.distill.cache_dtype, |done| progress.set_position(done as u64))?;
    progress.finish_and_clear();
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| TrainError::io(path, e))?;
    cache.write(path)?;
    Ok(cache)
}

fn check_vocabularies(teacher: &Decoder, student: &Decoder) -> Result<()> {
    if teacher.metadata.vocab_size != student.metadata.vocab_size {
        return Err(TrainError::Incompatible {
            message: format!(
                "the teacher's vocabulary has {} tokens and the student's {}; distillation needs one shared tokenizer",
                teacher.metadata.vocab_size, student.metadata.vocab_size
            ),
        });
    }
    Ok(())
}

/// Loads the teacher and the data, and builds the top-k caches that are missing.
fn prepare_distill(config: &RunConfig, config_path: &Path, quiet: bool) -> Result<(Decoder, Vec<Example>, Vec<Example>, Option<(TopkCache, Option<TopkCache>)>)> {
    let mut teacher = load(config.teacher_path(config_path)?, DType::F32, &device()?)?;
    teacher.freeze();
    let (train, dev) = read_data(config, &teacher)?;
    if config.distill.top_k == 0 {
        return Ok((teacher, train, dev, None));
    }
    let dir = config.cache_dir();
    let train_cache = ensure_cache(config, &teacher, &train, &dir.join("train.topk"), quiet)?;
    let dev_cache = if dev.is_empty() { None } else { Some(ensure_cache(config, &teacher, &dev, &dir.join("dev.topk"), quiet)?) };
    Ok((teacher, train, dev, Some((train_cache, dev_cache))))
}

/// Computes the teacher's top-k caches for the configured data without training.
pub fn topk(config_path: &Path, quiet: bool) -> Result<()> {
    let mut config = read_config(config_path)?;
    if config.distill.top_k == 0 {
        config.distill.top_k = 64;
    }
    prepare_distill(&config, config_path, quiet)?;
    eprintln!("teacher top-k caches are in {}", config.cache_dir().display());
    Ok(())
}

/// Runs distillation as configured in `config_path`.
pub fn distill(config_path: &Path, quiet: bool) -> Result<()> {
    let config = read_config(config_path)?;
    let (teacher, train, dev, caches) = prepare_distill(&config, config_path, quiet)?;
    let student = make_student(&config, config_path, &teacher)?;
    check_vocabularies(&teacher, &student)?;
    let signal = match caches {
        // The cache replaces the teacher, whose weights are dropped here.
        Some((train_cache, dev_cache)) => TeacherSignal::Topk { train: train_cache, dev: dev_cache },
        None => TeacherSignal::Online(teacher),
    };
    let mut run = trainer(&config, student, signal, train, dev, quiet);
    let summary = run.run(None)?;
    let written = save_final(&config, &run.model)?;
    report(&summary, &written);
    Ok(())
}
