//! Long native calls as jobs Java can watch and cancel from another thread: Java asks for a
//! job id, passes it to the call, polls its progress and may cancel it. No callbacks into
//! the JVM from worker threads.
use crate::progress::{Monitor, Progress};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct Job {
    cancelled: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
    started: Instant,
}

impl Default for Job {
    fn default() -> Self {
        Job { cancelled: AtomicBool::new(false), done: AtomicU64::new(0), total: AtomicU64::new(0), started: Instant::now() }
    }
}

impl Monitor for Job {
    fn report(&self, p: &Progress) {
        self.done.store(p.done, Ordering::Relaxed);
        self.total.store(p.total, Ordering::Relaxed);
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

static JOBS: Lazy<Mutex<HashMap<i64, Arc<Job>>>> = Lazy::new(Default::default);
static NEXT: AtomicI64 = AtomicI64::new(1);

fn jobs() -> std::sync::MutexGuard<'static, HashMap<i64, Arc<Job>>> {
    // A panic while holding the lock cannot leave the map inconsistent: recover it.
    JOBS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn create() -> i64 {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    jobs().insert(id, Arc::new(Job::default()));
    id
}

/// The job's monitor; unknown ids (0, or ended jobs) get a fresh one nobody watches.
pub fn get(id: i64) -> Arc<Job> {
    jobs().get(&id).cloned().unwrap_or_default()
}

pub fn cancel(id: i64) {
    if let Some(j) = jobs().get(&id) {
        j.cancelled.store(true, Ordering::Relaxed);
    }
}

pub fn progress(id: i64) -> (u64, u64) {
    jobs().get(&id).map(|j| (j.done.load(Ordering::Relaxed), j.total.load(Ordering::Relaxed))).unwrap_or((0, 0))
}

/// What the status bar says after the command's name: the share done and the time left
/// (see [`crate::progress::remaining_words`]).
pub fn status(id: i64) -> String {
    let (done, total, seconds) = jobs()
        .get(&id)
        .map(|j| (j.done.load(Ordering::Relaxed), j.total.load(Ordering::Relaxed), j.started.elapsed().as_secs_f64()))
        .unwrap_or((0, 0, 0.0));
    let fraction = if total == 0 { 0.0 } else { done as f64 / total as f64 };
    crate::progress::remaining_words(fraction, seconds)
}

pub fn end(id: i64) {
    jobs().remove(&id);
}
