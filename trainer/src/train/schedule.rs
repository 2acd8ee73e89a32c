//! Learning-rate schedule: linear warmup, then cosine decay to a floor.

/// Schedule parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Peak learning rate, reached at the end of warmup.
    pub peak: f64,
    /// Final learning rate at the last step.
    pub min: f64,
    /// Steps of linear warmup from `peak / warmup` to `peak`.
    pub warmup: u64,
    /// Total optimizer steps.
    pub total: u64,
}

impl Schedule {
    /// Learning rate of optimizer step `step` (1-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step <= self.warmup && self.warmup > 0 {
            return self.peak * step as f64 / self.warmup as f64;
        }
        let decay_steps = self.total.saturating_sub(self.warmup).max(1);
        let progress = ((step - self.warmup.min(step)) as f64 / decay_steps as f64).min(1.0);
        self.min + 0.5 * (self.peak - self.min) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}
