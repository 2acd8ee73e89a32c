//! Checkpoints: a folder `checkpoints/step-NNNNNNNN/` with `model.safetensors` (weights),
//! `optimizer.safetensors` (AdamW moments) and `state.json` (step, data position, RNG state,
//! loss history). Each folder is built under a temporary name, fsynced and renamed, so a
//! folder with a step name is always complete. A run killed at any moment resumes from the
//! newest one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{Result, TrainError};
use crate::model::Decoder;
use crate::safetensors_io;
use crate::train::optimizer::AdamW;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Index of the next packed sequence of the current epoch.
    pub next_sequence: usize,
    /// Seed of the data-order generator (ChaCha8).
    pub seed: u64,
    /// Word position of the data-order generator at the start of the current epoch, before
    /// the epoch's shuffle (a u128 written as a decimal string).
    pub epoch_rng_word_pos: String,
    /// Training loss of every step done: `(step, loss)`.
    pub train_losses: Vec<(u64, f64)>,
    /// Development loss of every evaluation: `(step, loss)`.
    pub dev_losses: Vec<(u64, f64)>,
    /// Identifies the run (data and model sizes), so a checkpoint of another run is rejected.
    pub run_id: String,
}

/// Returns the folder of the checkpoint of `step` under `root`.
pub fn step_dir(root: &Path, step: u64) -> PathBuf {
    root.join(format!("step-{step:08}"))
}

/// Writes a checkpoint of `model`, `optimizer` and `state` under `root` and deletes all but the
/// newest `keep` checkpoints. Returns the new folder.
pub fn save(root: &Path, model: &Decoder, optimizer: &AdamW, state: &TrainState, keep: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| TrainError::io(root, e))?;
    let dir = step_dir(root, state.step);
    atomic::write_dir_with(&dir, |temp| {
        let weights: Vec<(String, Tensor)> = model.vars().map(|(name, var)| (name.clone(), var.as_detached_tensor())).collect();
        write(temp, "model.safetensors", &safetensors_io::encode(&weights)?)?;
        let mut moments = Vec::new();
        for (name, (m, v)) in &optimizer.moments {
            moments.push((format!("m.{name}"), m.clone()));
            moments.push((format!("v.{name}"), v.clone()));
        }
        write(temp, "optimizer.safetensors", &safetensors_io::encode(&moments)?)?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Checkpoint { path: temp.to_path_buf(), message: e.to_string() })?;
        write(temp, "state.json", &json)
    })?;
    let mut all = list(root)?;
    while all.len() > keep {
        let (_, old) = all.remove(0);
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(dir)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| TrainError::io(&path, e))
}

/// Lists the complete checkpoints under `root`, oldest first. Temporary folders left by a
/// killed writer (names starting with a dot) are deleted.
pub fn list(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    if !root.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(root).map_err(|e| TrainError::io(root, e))? {
        let path = entry.map_err(|e| TrainError::io(root, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') && name.ends_with(".tmp") {
            std::fs::remove_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
            continue;
        }
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()) {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Returns the newest checkpoint under `root`, if any.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    Ok(list(root)?.pop().map(|(_, path)| path))
}

/// Loads the checkpoint `dir` into `model` and `optimizer` and returns its state. The model
/// must have the checkpoint's parameter names and shapes.
pub fn load(dir: &Path, model: &Decoder, optimizer: &mut AdamW) -> Result<TrainState> {
    let state_path = dir.join("state.json");
    let text = std::fs::read(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
    let state: TrainState = serde_json::from_slice(&text).map_err(|e| TrainError::Checkpoint { path: dir.to_path_buf(), message: format!("state.json is invalid: {e}") })?;
    let weights = safetensors_io::read(&dir.join("model.safetensors"), model.dtype(), model.device())?;
    for (name, var) in model.vars() {
        let tensor = weights.get(name).ok_or_else(|| TrainError::Checkpoint { path: dir.to_path_buf(), message: format!("parameter {name} is missing; the checkpoint belongs to another model") })?;
        if tensor.dims() != var.dims() {
            return Err(TrainError::Checkpoint { path: dir.to_path_buf(), message: format!("parameter {name} has shape {:?}, the model has {:?}; the checkpoint belongs to another model", tensor.dims(), var.dims()) });
        }
        var.set(tensor)?;
    }
    let moments = safetensors_io::read(&dir.join("optimizer.safetensors"), model.dtype(), model.device())?;
    let mut restored = BTreeMap::new();
    for name in optimizer.moments.keys() {
        let get = |prefix: &str| {
            moments.get(&format!("{prefix}.{name}")).cloned().ok_or_else(|| TrainError::Checkpoint { path: dir.to_path_buf(), message: format!("optimizer moment {prefix}.{name} is missing") })
        };
        restored.insert(name.clone(), (get("m")?, get("v")?));
    }
    optimizer.moments = restored;
    optimizer.step = state.step;
    Ok(state)
}
