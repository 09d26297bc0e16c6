//! Work that may wait: threads at a lower priority, so that searches and the
//! network go first while a flood of listings is taken in or indexed, and fixed
//! pools of threads, which bound how many cores a kind of work takes.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

/// The nice value of background threads (0 is the default, 19 the lowest
/// priority).
const BACKGROUND_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`], for good: an
/// unprivileged thread cannot raise it again.
pub fn lower_priority() {
    lower_priority_to(BACKGROUND_NICE);
}

/// Lowers the calling thread's priority to `nice`, for good.
pub fn lower_priority_to(nice: libc::c_int) {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id (Linux gives each thread its own
    // nice value); raising one's nice value needs no privilege.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) != 0 {
            tracing::debug!("a background thread keeps its priority: {}", std::io::Error::last_os_error());
        }
    }
}

/// Runs `work` on a thread of its own at the lower priority and returns its
/// result. Threads it starts inherit the priority: the index is opened this way,
/// so that tantivy's indexing and merge threads yield to searches.
pub async fn run_lowered<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name.to_string()).spawn(move || {
        lower_priority();
        let _ = tx.send(work());
    })?;
    rx.await.map_err(|_| std::io::Error::other(format!("the {name} thread panicked")))
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of background threads taking jobs in the order they are given.
/// The threads end when the pool is dropped and its queue is empty.
#[derive(Debug)]
pub struct Pool {
    tx: mpsc::Sender<Job>,
}

impl Pool {
    /// A pool of `threads` threads at the lower priority.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        Pool::start(name, threads, BACKGROUND_NICE)
    }

    /// A pool of `threads` threads at nice value `nice` (0: the caller's).
    pub fn start(name: &str, threads: usize, nice: libc::c_int) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                if nice > 0 {
                    lower_priority_to(nice);
                }
                loop {
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { break };
                    // A panicking job is a bug; it is logged, and the thread goes on.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a background job panicked");
                    }
                }
            })?;
        }
        Ok(Pool { tx })
    }

    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        // The threads end only with the pool, so the queue is open while `self` is.
        let _ = self.tx.send(Box::new(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_at_the_lower_priority_and_a_panic_does_not_stop_the_pool() {
        let pool = Pool::new("test", 1).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(|| panic!("a bug"));
        pool.spawn(move || {
            // SAFETY: getpriority of this thread.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            tx.send(nice).unwrap();
        });
        let nice = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the second job ran");
        assert!(nice >= BACKGROUND_NICE, "nice {nice}");
    }

    fn nice() -> libc::c_int {
        // SAFETY: getpriority of the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// A pool's threads take the nice value asked for; 0 keeps the caller's.
    #[test]
    fn a_pool_runs_at_the_nice_value_asked_for() {
        let before = nice();
        for (asked, expected) in [(5, before.max(5)), (0, before)] {
            let pool = Pool::start("test", 1, asked).unwrap();
            let (tx, rx) = mpsc::channel();
            pool.spawn(move || tx.send(nice()).unwrap());
            let got = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the job ran");
            assert_eq!(got, expected, "asked for {asked}");
        }
    }

    #[tokio::test]
    async fn threads_started_by_lowered_work_inherit_its_priority() {
        let before = nice();
        let (own, started) = run_lowered("test", || {
            let started = std::thread::spawn(nice).join().unwrap();
            (nice(), started)
        })
        .await
        .unwrap();
        assert!(own >= BACKGROUND_NICE && started >= BACKGROUND_NICE, "{own} {started}");
        assert_eq!(nice(), before, "the caller keeps its priority");
    }
}
