//! The two baselines, run on the same pack over the same loopback: `sendme`
//! (iroh-blobs' own sender and receiver, from crates.io) and libtorrent (Debian's
//! `python3-libtorrent`, through `bench/torrent.py`).
//!
//! The whole benchmark runs in a network namespace that holds only loopback (see
//! `main`), so neither tool can reach a relay, a DNS server, a DHT bootstrap node
//! or a UPnP gateway, whatever its defaults.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::procs::{self, Cost, Server};

/// A running `sendme send` and the ticket it printed.
pub struct SendmeSender {
    server: Server,
    pub ticket: String,
}

impl SendmeSender {
    /// `sendme send DIR --relay disabled` with `scratch` as working directory (it
    /// keeps its store there); returns once it printed the ticket.
    pub fn start(sendme: &Path, dir: &Path, scratch: &Path) -> Result<SendmeSender> {
        std::fs::create_dir_all(scratch)?;
        let mut command = Command::new(sendme);
        command
            .arg("send")
            .arg(dir)
            .args(["--relay", "disabled", "--no-progress"])
            .current_dir(scratch)
            .stderr(std::fs::File::create(scratch.join("sendme-send.stderr"))?)
            .env_remove("RUST_LOG");
        let (server, ticket) = Server::start(command, "sendme send", |line| {
            line.strip_prefix("sendme receive ").map(|t| t.trim().to_string())
        })?;
        Ok(SendmeSender { server, ticket })
    }

    pub fn stop(self) -> Result<()> {
        self.server.interrupt()
    }
}

/// One `sendme receive`.
#[derive(Clone, Copy, Debug)]
pub struct SendmeReceive {
    /// The receiving process from spawn to exit: connect, download, export, and
    /// removing its temporary store.
    pub cost: Cost,
    /// sendme's own figure for the download alone (`-v`: "took …").
    pub download_secs: Option<f64>,
}

/// `sendme receive TICKET --relay disabled` in `into` (it exports there).
pub fn sendme_receive(sendme: &Path, ticket: &str, into: &Path) -> Result<SendmeReceive> {
    std::fs::create_dir_all(into)?;
    let mut command = Command::new(sendme);
    command
        .args(["receive", ticket, "--relay", "disabled", "--no-progress", "-v"])
        .current_dir(into)
        .stderr(std::fs::File::create(into.with_extension("stderr"))?)
        .env_remove("RUST_LOG");
    let (out, cost) = procs::run(command, "sendme receive")?;
    Ok(SendmeReceive { cost, download_secs: took(&out) })
}

/// sendme's download time from its `-v` summary, "downloaded 100 files, 1.00 GiB.
/// took 2 seconds (440.12 MiB/s)": the rounded duration is too coarse, so it is the
/// payload over the rate (both with four significant digits).
fn took(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.starts_with("downloaded "))?;
    let payload = line.split(", ").nth(1)?.split(". took").next()?;
    let rate = line.rsplit('(').next()?.strip_suffix("/s)")?;
    Some(human_bytes(payload)? / human_bytes(rate)?)
}

/// "61.44 MiB" → bytes.
fn human_bytes(text: &str) -> Option<f64> {
    let (value, unit) = text.trim().split_once(' ')?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(value.parse::<f64>().ok()? * scale)
}

/// What `torrent.py run` prints.
#[derive(Clone, Debug, Deserialize)]
pub struct Torrent {
    /// From adding the torrent to the leecher's session to its finished alert.
    pub leech_secs: f64,
    pub piece_size: u64,
    pub peak_rss_kb: u64,
    pub cpu_secs: f64,
}

pub fn torrent_script() -> PathBuf {
    crate::workspace().join("bench").join("torrent.py")
}

/// One seeder and one leecher of `dir`, the .torrent kept in `work` between runs.
pub fn torrent(python: &Path, dir: &Path, work: &Path) -> Result<(Torrent, Cost)> {
    let leech = work.join("leech");
    if leech.exists() {
        std::fs::remove_dir_all(&leech)?;
    }
    let mut command = Command::new(python);
    command.arg(torrent_script()).arg("run").arg(dir).arg(work);
    let (out, cost) = procs::run(command, "torrent.py")?;
    let line = out.lines().last().unwrap_or_default();
    let report = serde_json::from_str(line).with_context(|| format!("torrent.py printed {out:?}"))?;
    Ok((report, cost))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sendme_durations() {
        let out = "exporting to long\ndownloaded 8 files, 61.44 MiB. took 1 second (94.28 MiB/s)\n";
        assert!((super::took(out).unwrap() - 61.44 / 94.28).abs() < 1e-9);
        assert_eq!(super::took("downloaded 1 files, 3 B. took 0 seconds (6 B/s)"), Some(0.5));
        assert_eq!(super::took("nothing"), None);
    }
}
