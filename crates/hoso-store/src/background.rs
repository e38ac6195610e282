//! When and how the store's background threads run.
//!
//! The indexer and the zero-fill thread do work that no caller waits for; the writer, the
//! syncer and the callers' tasks are on the path of every acknowledgement. On a machine with
//! few cores, a background thread that holds a core in the middle of a burst of appends delays
//! the whole group's fsync: the kernel protects a running thread's time slice (up to a few
//! milliseconds) from threads that wake up, and does not preempt system calls at all on the
//! usual server kernels (`PREEMPT_NONE`). So background threads
//!
//! - run at the lowest priority (nice 19), to take the time the others leave; and
//! - start each piece of work while an fsync of the log is in flight ([`FsyncWindow`]): the
//!   appenders of the group are all waiting for it then, and the cores are idle.
//!
//! Neither starves them: the writer stops taking appends while the indexer's backlog is full,
//! and a piece of work waits for an fsync at most [`LONGEST_WAIT`]. The price is paid when
//! other work keeps every core busy: the indexer then gets a small share, its backlog fills and
//! holds the writer back. A priority once lowered cannot be raised again without privileges.
//! (What the priority and the window are worth: BENCHMARKS.md, "Store tuning constants".)

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The nice value of background threads: the lowest priority short of `SCHED_IDLE`, which
/// starves a thread while it holds a lock the writer needs.
const BACKGROUND_NICE: i32 = 19;

/// How long a piece of background work waits for an fsync at most: under a light load fsyncs
/// are rare, and the cores idle anyway. Without an fsync for this long (an idle store, or one
/// indexing what recovery found), it does not wait at all.
pub(crate) const LONGEST_WAIT: Duration = Duration::from_millis(2);

/// Lowers the calling thread's priority. A failure (a sandbox that forbids it) only costs
/// speed, so it is ignored.
pub(crate) fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread: this sets the caller's, not the process's.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE);
    }
}

/// Whether an fsync of the log is in flight, for background threads to wait for.
pub(crate) struct FsyncWindow {
    open: AtomicBool,
    /// When the last fsync started, in nanoseconds since `since`.
    last_opened: AtomicU64,
    since: Instant,
    /// Background threads waiting: the fsync only takes the lock to wake them if there are.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    opened: Condvar,
}

impl Default for FsyncWindow {
    fn default() -> Self {
        FsyncWindow {
            open: AtomicBool::new(false),
            last_opened: AtomicU64::new(0),
            since: Instant::now(),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            opened: Condvar::new(),
        }
    }
}

impl FsyncWindow {
    fn now(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether an fsync started within the last `LONGEST_WAIT`: appends are coming in.
    fn busy(&self) -> bool {
        let last = self.last_opened.load(Ordering::Relaxed);
        last != 0 && self.now().saturating_sub(last) < LONGEST_WAIT.as_nanos() as u64
    }

    /// An fsync of the log starts.
    pub(crate) fn open(&self) {
        self.last_opened.store(self.now().max(1), Ordering::Relaxed);
        self.open.store(true, Ordering::SeqCst);
        // A waiter counts itself before it looks at `open`, and this looks at the count after
        // setting `open`: one of the two sees the other. The lock orders the wake-up after
        // the waiter's last look.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.opened.notify_all();
        }
    }

    /// The fsync is over.
    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }

    /// Waits until an fsync is in flight, or `LONGEST_WAIT`; not at all if none started lately.
    pub(crate) fn wait(&self) {
        if !self.busy() {
            return;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if !self.open.load(Ordering::SeqCst)
            && let Ok(guard) = self.lock.lock()
            && !self.open.load(Ordering::SeqCst)
        {
            let _ = self.opened.wait_timeout(guard, LONGEST_WAIT);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
