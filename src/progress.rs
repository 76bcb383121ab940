//! One way for long work to report progress and be stopped: the CLI draws a progress bar
//! from it, the Fiji plugin calls IJ.showProgress and sets the cancel flag on Esc.
use std::sync::atomic::{AtomicBool, Ordering};

/// What long work reports after each step.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// A short status line ("loss 3.21, 4.2 steps/s").
    pub message: String,
}

/// Receives progress and may ask to stop.
pub trait Monitor: Sync {
    fn report(&self, progress: &Progress);
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A monitor that ignores progress and never cancels.
pub struct Silent;
impl Monitor for Silent {
    fn report(&self, _: &Progress) {}
}

/// A monitor holding only a cancel flag (tests, simple callers).
#[derive(Default)]
pub struct CancelFlag(pub AtomicBool);
impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
}
impl Monitor for CancelFlag {
    fn report(&self, _: &Progress) {}
    fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// ": 40%, about 3 min left" from the fraction done and the seconds so far (a long training run
/// of hours must say so); "..." until there is enough to extrapolate from. The Fiji status bar
/// shows it after the command's name.
pub fn remaining_words(fraction: f64, seconds: f64) -> String {
    if fraction.is_nan() || fraction <= 0.02 || fraction >= 1.0 || seconds < 2.0 {
        return "...".into();
    }
    let left = seconds * (1.0 - fraction) / fraction;
    format!(": {}%, about {} left", (100.0 * fraction).round(), duration_words(left))
}

/// "40 s", "12 min", "2.3 h": a duration as a person reads it.
pub fn duration_words(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{} s", seconds.round().max(1.0))
    } else if seconds < 5400.0 {
        format!("{} min", (seconds / 60.0).round())
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_is_said_once_there_is_something_to_extrapolate_from() {
        assert_eq!(remaining_words(0.0, 10.0), "...");
        assert_eq!(remaining_words(0.5, 1.0), "...");
        assert_eq!(remaining_words(1.0, 10.0), "...");
        assert_eq!(remaining_words(f64::NAN, 10.0), "...");
        assert_eq!(remaining_words(0.25, 10.0), ": 25%, about 30 s left");
        assert_eq!(remaining_words(0.1, 60.0), ": 10%, about 9 min left");
        assert_eq!(remaining_words(0.1, 714.0), ": 10%, about 1.8 h left");
    }
}
