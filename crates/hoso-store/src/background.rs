//! The priority of the store's background threads.
//!
//! The indexer and the zero-fill thread do work that no caller waits for; the writer, the
//! syncer and the callers' tasks are on the path of every acknowledgement. On a machine with
//! few cores, a background thread that takes a core in the middle of a burst of appends delays
//! the whole group's fsync. Run at the lowest priority, it takes the time the others leave:
//! the idle time of every fsync. It is never starved for long: the writer stops taking appends
//! while the indexer's backlog is full, and then nothing else wants the CPU.
//!
//! On the 2-vCPU machine of BENCHMARKS.md this raised durable appends of 10 events at 16
//! appenders by 3-8% (interleaved runs).

/// The nice value of background threads: the lowest priority short of `SCHED_IDLE`, which
/// starves a thread while it holds a lock the writer needs (it cost 14%).
const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's priority. A failure (a sandbox that forbids it) only costs
/// speed, so it is ignored.
pub(crate) fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value is per thread: this sets the caller's, not the process's.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE);
    }
}
