//! Atomic file and folder writes: write under a temporary name, fsync, rename into place,
//! fsync the parent folder. A reader sees the old version or the new one, never a part.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// Returns a temporary name beside `path`, so the final rename stays on one file system.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Flushes a file's data to disk.
pub fn fsync_file(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    file.sync_all().map_err(|e| TrainError::io(path, e))
}

/// Flushes a folder's entries (new names, renames) to disk.
pub fn fsync_dir(path: &Path) -> Result<()> {
    let dir = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    let file = File::open(dir).map_err(|e| TrainError::io(dir, e))?;
    file.sync_all().map_err(|e| TrainError::io(dir, e))
}

/// Writes `bytes` to `path` atomically.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file_with(path, |file| file.write_all(bytes))
}

/// Writes `path` atomically with `fill`, which writes the contents to the temporary file. When
/// `fill` fails, the temporary file is removed and an existing `path` is left untouched.
pub fn write_file_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let temp = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&temp)?;
        fill(&mut file)?;
        file.flush()?;
        file.sync_all()
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(TrainError::io(path, error));
    }
    if let Err(error) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(TrainError::io(path, error));
    }
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Builds the folder `path` atomically: `fill` writes into a fresh temporary folder, whose files
/// are then fsynced and which is renamed to `path`. An existing `path` is replaced only after
/// the new folder is complete. When `fill` fails, the temporary folder is removed.
pub fn write_dir_with(path: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let temp = temporary_path(path);
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(|e| TrainError::io(&temp, e))?;
    }
    std::fs::create_dir_all(&temp).map_err(|e| TrainError::io(&temp, e))?;
    let result = fill(&temp).and_then(|()| {
        for entry in std::fs::read_dir(&temp).map_err(|e| TrainError::io(&temp, e))? {
            let entry = entry.map_err(|e| TrainError::io(&temp, e))?;
            if entry.file_type().map_err(|e| TrainError::io(&entry.path(), e))?.is_file() {
                fsync_file(&entry.path())?;
            }
        }
        fsync_dir(&temp)
    });
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(error);
    }
    // A folder cannot be renamed over a non-empty folder: move the old one aside first.
    let old = path.with_file_name(format!(".{}.{}.old", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::process::id()));
    let replaced = path.exists();
    if replaced {
        std::fs::rename(path, &old).map_err(|e| TrainError::io(path, e))?;
    }
    if let Err(error) = std::fs::rename(&temp, path) {
        if replaced {
            let _ = std::fs::rename(&old, path);
        }
        let _ = std::fs::remove_dir_all(&temp);
        return Err(TrainError::io(path, error));
    }
    if replaced {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Removes what killed writers left in `dir`: temporary files and folders (`.NAME.PID.tmp`)
/// and folders moved aside for replacement (`.NAME.PID.old`) whose process no longer runs.
/// Only Linux tells whether a process runs (through /proc); elsewhere nothing is removed.
pub fn remove_stale(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|rest| rest.strip_suffix(".tmp").or_else(|| rest.strip_suffix(".old"))) else { continue };
        let Some((_, pid)) = rest.rsplit_once('.') else { continue };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let path = entry.path();
        // A failed removal leaves only litter, which the next run retries.
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}
