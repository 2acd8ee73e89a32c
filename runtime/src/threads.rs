//! A persistent worker pool for splitting matrix products by row blocks.
//!
//! Workers are created once. Between jobs each one spins for a short while, so that the next
//! matrix product of a forward pass starts without a wake-up, then parks on a condition
//! variable. The calling thread takes part in every job, so a pool of `n` threads runs `n - 1`
//! workers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::vec::Vec;

/// Spin iterations a thread waits before it parks; each is a `spin_loop` hint of tens to a few
/// hundred cycles. The wait bridges the gap between two matrix products of one forward pass
/// without taking a core from other processes for long.
const SPIN_LIMIT: u32 = 2048;

/// A job: a task function and how many tasks it has. The function reference is only valid
/// while `ThreadPool::run` has not returned; see the SAFETY notes there.
#[derive(Clone, Copy)]
struct Job {
    task: *const (dyn Fn(usize) + Sync),
    count: usize,
}

// SAFETY: `task` points to a `Sync` closure, so calling it from several threads is allowed.
// `run` keeps the closure alive until every worker has finished with the job.
unsafe impl Send for Job {}

struct Shared {
    /// The current job and its sequence number; the number changes once per job.
    job: Mutex<(u64, Option<Job>)>,
    wake: Condvar,
    /// Sequence number of the current job, readable without the lock while spinning.
    sequence: AtomicUsize,
    /// Next task index to claim.
    next: AtomicUsize,
    /// Workers still working on the current job.
    busy: AtomicUsize,
    done: Condvar,
    done_lock: Mutex<()>,
    shutdown: AtomicBool,
}

/// A fixed set of worker threads that run jobs of independent tasks.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
}

impl core::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadPool").field("threads", &self.threads).finish()
    }
}

impl ThreadPool {
    /// Creates a pool of `threads` threads, the caller included (`threads - 1` workers).
    /// `threads` of 0 is taken as 1.
    pub fn new(threads: usize) -> ThreadPool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: Mutex::new((0, None)),
            wake: Condvar::new(),
            sequence: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            done: Condvar::new(),
            done_lock: Mutex::new(()),
            shutdown: AtomicBool::new(false),
        });
        let workers = (1..threads)
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(std::format!("tinyllm-worker-{i}"))
                    .spawn(move || worker(&shared))
                    .expect("the OS creates a worker thread")
            })
            .collect();
        ThreadPool { shared, workers, threads }
    }

    /// Number of threads, the caller included.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `task(i)` for every `i` in `0..count` on the pool's threads and returns when all
    /// have finished. Tasks are claimed in order, one at a time, by whichever thread is free.
    pub fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) {
        if count == 0 {
            return;
        }
        if self.workers.is_empty() || count == 1 {
            for i in 0..count {
                task(i);
            }
            return;
        }
        let shared = &*self.shared;
        // SAFETY: the lifetime of `task` is erased so that workers can hold it. This function
        // does not return before `busy` is back to zero, that is, before every worker has
        // stopped calling `task`, so no worker uses it after the caller's borrow ends.
        let task_static: *const (dyn Fn(usize) + Sync) = unsafe { core::mem::transmute(task) };
        shared.next.store(0, Ordering::Relaxed);
        shared.busy.store(self.workers.len(), Ordering::Relaxed);
        {
            let mut job = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            job.0 += 1;
            job.1 = Some(Job { task: task_static, count });
            shared.sequence.store(job.0 as usize, Ordering::Release);
        }
        shared.wake.notify_all();

        claim_tasks(shared, task, count);

        // Wait for the workers: spin first, then sleep.
        let mut spins = 0;
        while shared.busy.load(Ordering::Acquire) != 0 {
            if spins < SPIN_LIMIT {
                spins += 1;
                core::hint::spin_loop();
            } else {
                let guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
                if shared.busy.load(Ordering::Acquire) != 0 {
                    drop(shared.done.wait_timeout(guard, std::time::Duration::from_millis(1)));
                }
            }
        }
        let mut job = shared.job.lock().unwrap_or_else(|e| e.into_inner());
        job.1 = None;
    }
}

fn claim_tasks(shared: &Shared, task: &(dyn Fn(usize) + Sync), count: usize) {
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= count {
            break;
        }
        task(i);
    }
}

fn worker(shared: &Shared) {
    let mut seen = 0usize;
    loop {
        // Spin on the sequence number, then park until it changes.
        let mut spins = 0;
        while shared.sequence.load(Ordering::Acquire) == seen && !shared.shutdown.load(Ordering::Relaxed) {
            if spins < SPIN_LIMIT {
                spins += 1;
                core::hint::spin_loop();
            } else {
                let guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
                if guard.0 as usize == seen && !shared.shutdown.load(Ordering::Relaxed) {
                    drop(shared.wake.wait(guard));
                }
                spins = 0;
            }
        }
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        let job = {
            let guard = shared.job.lock().unwrap_or_else(|e| e.into_inner());
            seen = guard.0 as usize;
            guard.1
        };
        if let Some(job) = job {
            // SAFETY: `run` published this job and waits for `busy` to reach zero before it
            // returns, so the closure behind `job.task` is alive for this whole call.
            let task = unsafe { &*job.task };
            claim_tasks(shared, task, job.count);
            if shared.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _guard = shared.done_lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.done.notify_all();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        {
            let _guard = self.shared.job.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Counts the physical cores. Logical CPUs that share a core (SMT siblings) count once. On
/// Linux systems that mark efficiency cores (Intel hybrid `cpu_core`, or ARM big.LITTLE through
/// `cpu_capacity`), only the performance cores count.
pub fn physical_cores() -> usize {
    #[cfg(target_os = "linux")]
    if let Some(count) = linux_performance_cores() {
        return count;
    }
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(target_os = "linux")]
fn linux_performance_cores() -> Option<usize> {
    use std::collections::BTreeSet;
    let allowed = std::thread::available_parallelism().ok()?.get();
    let mut cores = BTreeSet::new();
    let mut capacities = Vec::new();
    for cpu in 0..4096 {
        let base = std::format!("/sys/devices/system/cpu/cpu{cpu}");
        let Ok(core_id) = std::fs::read_to_string(std::format!("{base}/topology/core_id")) else {
            if cpu == 0 {
                return None;
            }
            break;
        };
        let package = std::fs::read_to_string(std::format!("{base}/topology/physical_package_id")).unwrap_or_default();
        let capacity: u32 = std::fs::read_to_string(std::format!("{base}/cpu_capacity")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        capacities.push(capacity);
        cores.insert((package.trim().to_string(), core_id.trim().to_string(), capacity));
    }
    // Keep only the cores of the highest capacity where the kernel reports capacities.
    let max_capacity = capacities.iter().copied().max().unwrap_or(0);
    let performance = cores.iter().filter(|(_, _, c)| *c == max_capacity).count();
    // Intel hybrid parts list their performance cores in /sys/devices/cpu_core/cpus.
    let hybrid = std::fs::read_to_string("/sys/devices/cpu_core/cpus").ok().map(|list| count_cpu_list(&list));
    let count = match hybrid {
        Some(Some(p_threads)) if p_threads > 0 => {
            // Performance cores run two threads each when SMT is on.
            let smt = capacities.len() > cores.len();
            if smt { p_threads.div_ceil(2) } else { p_threads }
        }
        _ => performance,
    };
    Some(count.clamp(1, allowed))
}

/// Counts the CPUs in a Linux CPU list such as `0-3,8,10-11`.
#[cfg(target_os = "linux")]
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => count += b.parse::<usize>().ok()?.checked_sub(a.parse::<usize>().ok()?)? + 1,
            None => {
                part.parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}
