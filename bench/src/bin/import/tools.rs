//! Running the reference tools and this binary's child phases as processes, with the
//! wall time, CPU time and peak RSS of each (from `wait4`, which reports the one child
//! it reaps rather than the running maximum of `RUSAGE_CHILDREN`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// What one process cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    /// Wall seconds from spawn to exit (or to the moment the work was done).
    pub secs: f64,
    /// User + system CPU seconds of the process.
    pub cpu_secs: f64,
    /// Peak resident set in kB.
    pub maxrss_kb: u64,
}

/// Reaps `pid` and returns its exit status and resource usage.
fn wait4(pid: u32) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if rc < 0 {
        bail!("wait4({pid}): {}", std::io::Error::last_os_error());
    }
    Ok((status, usage))
}

fn cpu_secs(u: &libc::rusage) -> f64 {
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn exited_ok(status: i32) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// `b3sum --num-threads 1` over `files`, output discarded.
pub fn b3sum(b3sum: &Path, files: &[PathBuf]) -> Result<ProcStats> {
    let started = Instant::now();
    let child = Command::new(b3sum)
        .args(["--num-threads", "1"])
        .args(files)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", b3sum.display()))?;
    let (status, usage) = wait4(child.id())?;
    let secs = started.elapsed().as_secs_f64();
    if !exited_ok(status) {
        bail!("b3sum failed (status {status})");
    }
    Ok(ProcStats { secs, cpu_secs: cpu_secs(&usage), maxrss_kb: usage.ru_maxrss as u64 })
}

/// What `sendme send` reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sendme {
    /// sendme's own figure (`-vv`): endpoint bind, store creation, import and collection.
    pub own: ProcStats,
    /// From spawning the namespace to the `imported …` line on its stdout.
    pub wall_to_imported: f64,
}

/// `sendme send DIR` in a network namespace with only loopback (it must not reach
/// public relays or DNS), in `scratch` as working directory (it creates its store
/// there, and the caller deletes it); killed as soon as it reports the import done.
pub fn sendme(sendme: &Path, dir: &Path, scratch: &Path) -> Result<Sendme> {
    std::fs::create_dir_all(scratch)?;
    let stderr = std::fs::File::create(scratch.join("sendme.stderr"))?;
    let started = Instant::now();
    let mut child = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            r#"ip link set lo up && exec "$0" send "$1" --relay disabled --no-progress -vv"#,
        ])
        .arg(sendme)
        .arg(dir)
        .current_dir(scratch)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("starting sendme under unshare -n")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("sendme stdout")?;
    let mut wall_to_imported = None;
    let mut own_secs = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.starts_with("imported ") && wall_to_imported.is_none() {
            wall_to_imported = Some(started.elapsed().as_secs_f64());
        }
        // `-vv` prints "<seconds>s, <rate>/s" after the file list.
        if let Some((secs, _)) = line.split_once("s, ")
            && let Ok(secs) = secs.parse::<f64>()
        {
            own_secs = Some(secs);
            break;
        }
    }
    let hwm = read_hwm(pid);
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    let (_, usage) = wait4(pid)?;
    let (Some(wall_to_imported), Some(own_secs)) = (wall_to_imported, own_secs) else {
        let err = std::fs::read_to_string(scratch.join("sendme.stderr")).unwrap_or_default();
        bail!("sendme did not report an import: {err}");
    };
    Ok(Sendme {
        own: ProcStats {
            secs: own_secs,
            cpu_secs: cpu_secs(&usage),
            maxrss_kb: hwm.unwrap_or(usage.ru_maxrss as u64),
        },
        wall_to_imported,
    })
}

fn read_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Runs this binary with `args` and parses the JSON line it prints.
pub fn child<T: serde::de::DeserializeOwned>(args: &[&std::ffi::OsStr]) -> Result<(T, ProcStats)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child =
        Command::new(exe).args(args).stdout(Stdio::piped()).spawn().context("starting a child phase")?;
    let pid = child.id();
    let output = {
        let mut out = String::new();
        let mut stdout = child.stdout.context("child stdout")?;
        std::io::Read::read_to_string(&mut stdout, &mut out)?;
        out
    };
    let (status, usage) = wait4(pid)?;
    let secs = started.elapsed().as_secs_f64();
    if !exited_ok(status) {
        bail!("child phase {args:?} failed (status {status})");
    }
    let report = serde_json::from_str(output.trim()).with_context(|| format!("child output {output:?}"))?;
    Ok((report, ProcStats { secs, cpu_secs: cpu_secs(&usage), maxrss_kb: usage.ru_maxrss as u64 }))
}
