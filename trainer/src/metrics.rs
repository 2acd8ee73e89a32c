//! Evaluation records: one JSON line per evaluation in `metrics.jsonl` and the loss curves in
//! `loss.svg`, both beside the checkpoints.

use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::error::{Result, TrainError};

/// One evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRecord {
    /// Optimizer steps done.
    pub step: u64,
    /// Epoch (0-based).
    pub epoch: u64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    /// Objective on the development set (mean per target token).
    pub dev_loss: Option<f64>,
    /// Cross-entropy on the development set.
    pub dev_ce: Option<f64>,
    /// Distillation term on the development set.
    pub dev_distill: Option<f64>,
    /// Target tokens trained on so far.
    pub tokens: u64,
    /// Seconds since this process started training.
    pub elapsed_s: f64,
}

impl EvalRecord {
    /// Formats the record as one log line.
    pub fn log_line(&self, total_steps: u64) -> String {
        let mut line = format!("step {}/{} epoch {} lr {:.3e} train_loss {:.4}", self.step, total_steps, self.epoch, self.lr, self.train_loss);
        for (key, value) in [("dev_loss", self.dev_loss), ("dev_ce", self.dev_ce), ("dev_distill", self.dev_distill)] {
            if let Some(v) = value {
                line.push_str(&format!(" {key} {v:.4}"));
            }
        }
        line.push_str(&format!(" tokens {} elapsed {:.1}s", self.tokens, self.elapsed_s));
        line
    }
}

/// Appends one record to a JSON-lines file.
pub fn append(path: &Path, record: &EvalRecord) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| TrainError::io(path, e))?;
    let line = serde_json::to_string(record).map_err(|e| TrainError::io(path, std::io::Error::other(e)))?;
    writeln!(file, "{line}").map_err(|e| TrainError::io(path, e))
}

/// Drops the records after step `step` from a metrics file, so a resumed run does not repeat
/// the evaluations that the killed run made after its last checkpoint.
pub fn truncate_after(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let kept: String = text
        .lines()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= step))
        .map(|line| format!("{line}\n"))
        .collect();
    crate::atomic::write_file(path, kept.as_bytes())
}

/// Draws the training loss per step and the development loss per evaluation as an SVG file.
pub fn plot(path: &Path, train: &[(u64, f64)], dev: &[(u64, f64)]) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 480)).into_drawing_area();
        let draw = || -> std::result::Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let points = train.iter().chain(dev).filter(|(_, l)| l.is_finite());
            let max_step = points.clone().map(|(s, _)| *s).max().unwrap_or(1).max(1);
            let max_loss = points.clone().map(|(_, l)| *l).fold(0.0f64, f64::max).max(1e-3);
            let min_loss = points.map(|(_, l)| *l).fold(f64::INFINITY, f64::min).min(max_loss).max(0.0);
            let mut chart = ChartBuilder::on(&root)
                .caption("loss", ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(0u64..max_step, min_loss * 0.95..max_loss * 1.05)?;
            chart.configure_mesh().x_desc("step").y_desc("loss per target token").draw()?;
            chart.draw_series(LineSeries::new(train.iter().copied(), &BLUE))?.label("train").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
            if !dev.is_empty() {
                chart.draw_series(LineSeries::new(dev.iter().copied(), &RED))?.label("dev").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            }
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| TrainError::io(path, std::io::Error::other(e.to_string())))?;
    }
    crate::atomic::write_file(path, svg.as_bytes())
}
