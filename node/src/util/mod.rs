//! Small helpers, one per idiom, that the rest of the node shares: the clocks,
//! random bytes, atomic file writes ([`fs`]), id-prefix lookup ([`prefix`]),
//! per-peer rates ([`rate`]), low-priority threads ([`background`]) and the
//! allocator's set-up ([`memory`]).

pub mod background;
pub mod fs;
pub mod memory;
pub mod prefix;
pub mod rate;

/// The current time in unix seconds (0 on a clock set before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The processor time the calling thread has taken: what a piece of work costs,
/// apart from the time it waits for a core under load.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut time = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `time` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) } != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// How often the calling thread has given up its core so far: waiting for
/// something (a lock, a page from disk) and taken off it by the scheduler.
pub fn thread_switches() -> (u64, u64) {
    // SAFETY: a zeroed rusage is valid for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return (0, 0);
    }
    (usage.ru_nvcsw as u64, usage.ru_nivcsw as u64)
}

/// `N` bytes from the operating system's random generator.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not recoverable in any useful way.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_that_waits_counts_a_switch_and_one_that_does_not_counts_none() {
        std::thread::spawn(|| {
            let before = super::thread_switches();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let after = super::thread_switches();
            assert!(after.0 > before.0, "{before:?} {after:?}");
            let again = super::thread_switches();
            assert_eq!(again.0, after.0, "no wait in between");
        })
        .join()
        .unwrap();
    }
}
