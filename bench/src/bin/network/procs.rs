//! Child processes: this binary's phases, `sendme` and the libtorrent script, each
//! timed with its own CPU time and peak RSS (from `wait4`, which reports the one
//! child it reaps).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;

/// What one finished process cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    /// Wall seconds from spawn to exit.
    pub secs: f64,
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Peak resident set, bytes.
    pub peak_rss: u64,
}

/// Reaps `child` and returns its exit status and resource usage.
fn wait4(child: &Child) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our own unreaped child; both pointers are valid for the call.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4({}): {}", child.id(), std::io::Error::last_os_error());
    }
    Ok((status, usage))
}

fn cost(started: Instant, usage: &libc::rusage) -> Cost {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cost {
        secs: started.elapsed().as_secs_f64(),
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss: usage.ru_maxrss as u64 * 1024,
    }
}

fn exited_ok(status: i32) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Runs `command` to the end, with stdout captured; fails on a non-zero exit.
pub fn run(mut command: Command, what: &str) -> Result<(String, Cost)> {
    let started = Instant::now();
    let mut child = command.stdout(Stdio::piped()).spawn().with_context(|| format!("starting {what}"))?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut out)?;
    let (status, usage) = wait4(&child)?;
    let cost = cost(started, &usage);
    if !exited_ok(status) {
        bail!("{what} failed (wait status {status}); its output: {out}");
    }
    Ok((out, cost))
}

/// Runs this binary with `args` and parses the JSON it prints last.
pub fn phase<T: DeserializeOwned>(args: &[&std::ffi::OsStr], what: &str) -> Result<(T, Cost)> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(args);
    let (out, cost) = run(command, what)?;
    let line = out.lines().last().unwrap_or_default();
    let report = serde_json::from_str(line).with_context(|| format!("{what} printed {out:?}"))?;
    Ok((report, cost))
}

/// A long-running helper (a seeder, `sendme send`): stopped when dropped.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    what: String,
}

impl Server {
    /// Starts `command` and reads stdout lines until `ready` returns a value.
    pub fn start<T>(
        mut command: Command,
        what: &str,
        mut ready: impl FnMut(&str) -> Option<T>,
    ) -> Result<(Server, T)> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("stdout")?;
        let server = Server { child, stdin, what: what.to_string() };
        let mut lines = BufReader::new(stdout).lines();
        let value = loop {
            let Some(line) = lines.next() else {
                bail!("{what} exited before it was ready");
            };
            if let Some(value) = ready(&line?) {
                break value;
            }
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        server.stdin.as_ref().context("stdin")?;
        Ok((server, value))
    }

    /// Closes its stdin (our helpers exit on that) and waits; kills what is left.
    pub fn stop(mut self) -> Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("{} did not exit on its own; killing it", self.what);
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Interrupts it like Ctrl-C (for tools that clean up on SIGINT), then waits;
    /// kills what is left.
    pub fn interrupt(mut self) -> Result<()> {
        // SAFETY: signalling our own child process, which has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        self.stdin.take();
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("{} did not exit on SIGINT; killing it", self.what);
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `DIR/name` if it is a file, else the first `name` on `PATH`.
pub fn find_tool(dir: &Path, name: &str) -> Option<PathBuf> {
    let local = dir.join(name);
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|p| p.join(name)).find(|p| p.is_file())
}

/// The first line of `tool --version`, e.g. `sendme 0.37.1`.
pub fn version(tool: &Path) -> String {
    Command::new(tool)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| tool.display().to_string())
}

/// Writes dirty pages back so that one measurement does not pay for the last one's
/// writes.
pub fn sync_disks() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// This process's resident set (VmRSS), bytes.
pub fn rss() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// This process's peak resident set (VmHWM), bytes.
pub fn peak_rss() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resets VmHWM to the current RSS, so the next [`peak_rss`] covers one phase.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
