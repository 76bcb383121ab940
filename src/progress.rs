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

/// Several searches run side by side, shown as one bar: each part's latest progress, summed.
/// Reported one by one into the same monitor, their fractions made the bar jump back and forth
/// (α-AMD at 30 %, MI at 80 %, α-AMD again) as Fiji polled it.
pub struct SideBySide<'a> {
    inner: &'a dyn Monitor,
    /// Each part's (done, total), and the lock that keeps the sums reported in order.
    parts: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl<'a> SideBySide<'a> {
    pub fn new(inner: &'a dyn Monitor, parts: usize) -> SideBySide<'a> {
        SideBySide { inner, parts: std::sync::Mutex::new(vec![(0, 0); parts]) }
    }

    /// The monitor of part `index` (below the number of parts).
    pub fn part(&self, index: usize) -> Part<'_> {
        Part { whole: self, index }
    }
}

/// One part of a [`SideBySide`]: its progress counts into the whole; cancel is the whole's.
pub struct Part<'a> {
    whole: &'a SideBySide<'a>,
    index: usize,
}

impl Monitor for Part<'_> {
    fn report(&self, progress: &Progress) {
        let mut parts = self.whole.parts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(part) = parts.get_mut(self.index) {
            // A search's parallel starts may report out of order: of one total, the most done.
            let done = if part.1 == progress.total { part.0.max(progress.done) } else { progress.done };
            *part = (done, progress.total);
        }
        let (done, total) = parts.iter().fold((0, 0), |(d, t), &(pd, pt)| (d + pd, t + pt));
        self.whole.inner.report(&Progress { done, total, message: progress.message.clone() });
    }
    fn is_cancelled(&self) -> bool {
        self.whole.inner.is_cancelled()
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

    /// A monitor that keeps every report.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<(u64, u64, String)>>, CancelFlag);
    impl Monitor for Seen {
        fn report(&self, p: &Progress) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push((p.done, p.total, p.message.clone()));
        }
        fn is_cancelled(&self) -> bool {
            self.1.is_cancelled()
        }
    }

    #[test]
    fn parts_side_by_side_report_their_sum_and_share_the_cancel() {
        let seen = Seen::default();
        let whole = SideBySide::new(&seen, 2);
        let report = |part: usize, done: u64, total: u64, message: &str| whole.part(part).report(&Progress { done, total, message: message.into() });
        report(0, 30, 100, "α-AMD");
        report(1, 80, 100, "MI");
        report(0, 60, 100, "α-AMD");
        report(1, 100, 100, "MI");
        // A late report of fewer done (a parallel start's) does not take the bar back.
        report(0, 50, 100, "α-AMD");
        let got = seen.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let want: Vec<(u64, u64, String)> = vec![(30, 100, "α-AMD".into()), (110, 200, "MI".into()), (140, 200, "α-AMD".into()), (160, 200, "MI".into()), (160, 200, "α-AMD".into())];
        assert_eq!(got, want);
        assert!(!whole.part(1).is_cancelled());
        seen.1.cancel();
        assert!(whole.part(0).is_cancelled() && whole.part(1).is_cancelled());
    }

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
