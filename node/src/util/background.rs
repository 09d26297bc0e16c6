//! Work that may wait: threads at a lower priority, so that searches and the
//! network go first while a flood of listings is taken in or indexed, and fixed
//! pools of threads at the lowest, which bound how many cores a kind of work
//! takes.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// Moves the calling thread to Linux's `SCHED_IDLE`, for good (an unprivileged
/// thread cannot leave it): it gets a core only when no thread of the normal
/// policy wants it, and one of those waking up takes the core from it at once.
/// A nice value does not do that: under the kernel's EEVDF scheduler a thread at
/// nice 10 keeps the core until its slice ends, and a search woken meanwhile
/// waits. Only for work that holds nothing another thread waits for long: a
/// thread at this priority holding a lock on a busy core holds it for seconds.
pub fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on this thread's own id, with a parameter it only
    // reads; moving to SCHED_IDLE needs no privilege.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(libc::gettid(), libc::SCHED_IDLE, &param) != 0 {
            tracing::debug!("a background thread keeps its priority: {}", std::io::Error::last_os_error());
        }
    }
}

/// How long a thread polls [`Yielding`] futures before it offers its core to the
/// threads waiting for it.
const RUN_BEFORE_YIELD: Duration = Duration::from_micros(200);

thread_local! {
    /// Time this thread has spent in [`Yielding`] polls since it last yielded.
    static RAN: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    /// Times this thread has yielded for [`Yielding`], for the tests.
    #[cfg(test)]
    static YIELDS: Cell<u64> = const { Cell::new(0) };
}

/// A future whose polls add up, per thread: once they have run
/// [`RUN_BEFORE_YIELD`], the thread yields its core (`sched_yield`) to any thread
/// waiting for it, so that a search woken beside the swarm's busy thread waits
/// 0.2 ms rather than the rest of the swarm's slice. With nothing waiting the
/// yield returns at once.
pub struct Yielding<F>(pub F);

impl<F: Future + Unpin> Future for Yielding<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = Instant::now();
        let polled = Pin::new(&mut self.0).poll(cx);
        let ran = RAN.get() + start.elapsed();
        if ran >= RUN_BEFORE_YIELD {
            // SAFETY: sched_yield takes nothing and cannot fail on Linux.
            #[cfg(target_os = "linux")]
            unsafe {
                libc::sched_yield();
            }
            #[cfg(test)]
            YIELDS.set(YIELDS.get() + 1);
            RAN.set(Duration::ZERO);
        } else {
            RAN.set(ran);
        }
        polled
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
    /// A pool of `threads` threads at the lowest priority ([`lowest_priority`]).
    pub fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                lowest_priority();
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

    /// The calling thread's scheduling policy.
    fn policy() -> libc::c_int {
        // SAFETY: sched_getscheduler of the calling thread.
        unsafe { libc::sched_getscheduler(libc::gettid()) }
    }

    #[test]
    fn jobs_run_at_the_lowest_priority_and_a_panic_does_not_stop_the_pool() {
        let before = policy();
        let pool = Pool::new("test", 1).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.spawn(|| panic!("a bug"));
        pool.spawn(move || tx.send(policy()).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the second job ran");
        assert_eq!(got, libc::SCHED_IDLE);
        assert_eq!(policy(), before, "the caller keeps its priority");
    }

    #[test]
    fn yielding_futures_yield_once_they_have_run_a_while() {
        std::thread::spawn(|| {
            let spin = |micros| {
                let start = Instant::now();
                std::future::poll_fn(move |_| {
                    while start.elapsed() < Duration::from_micros(micros) {
                        std::hint::spin_loop();
                    }
                    Poll::Ready(())
                })
            };
            let poll = |micros| {
                let mut future = Yielding(Box::pin(spin(micros)));
                let waker = std::task::Waker::noop();
                assert!(Pin::new(&mut future).poll(&mut Context::from_waker(waker)).is_ready());
            };
            poll(0);
            assert_eq!(YIELDS.get(), 0, "a quick poll");
            poll(250);
            assert_eq!(YIELDS.get(), 1, "250 µs of polls");
            poll(0);
            assert_eq!(YIELDS.get(), 1, "the count starts again after a yield");
        })
        .join()
        .unwrap();
    }

    fn nice() -> libc::c_int {
        // SAFETY: getpriority of the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
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
