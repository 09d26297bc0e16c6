//! Helpers for tests that run the real `smpl` binary against real nodes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// The kit's packs, sounds and delays these tests use (each test file uses some):
// `write_sound` writes a hit or a steady tone like those of `make_mixed_pack`, and a
// clock-seeded `Xorshift` spreads kill delays over an operation.
#[allow(unused_imports)]
pub use smpl_testkit::{
    pack::{make_mixed_pack, write_sound},
    rng::Xorshift,
};

/// The `smpl` binary under test: this build's, or the one `SMPL_TEST_BIN` names, to
/// run these tests against another build (an older commit's, to see a test fail there).
pub static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("SMPL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_smpl").to_string())
});

/// Runs `smpl --home HOME ARGS…` and returns its output.
pub fn smpl(home: &Path, args: &[&str]) -> Output {
    Command::new(&*BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SMPL_HOME")
        .output()
        .expect("running smpl")
}

/// Starts `smpl --home HOME --json ARGS…` in the background, stdout piped.
pub fn smpl_spawn(home: &Path, args: &[&str]) -> Child {
    Command::new(&*BIN)
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .env_remove("SMPL_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting smpl")
}

/// Runs `smpl --json …` and parses every stdout line as JSON.
pub fn smpl_json(home: &Path, args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let out = smpl(home, &full);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A `smpl node` process on 127.0.0.1 with mDNS off, killed on drop.
pub struct TestNode {
    pub home: PathBuf,
    pub child: Child,
}

impl TestNode {
    pub fn start(home: &Path) -> TestNode {
        TestNode::start_with(home, &[])
    }

    /// Starts a node with extra `smpl node` arguments (e.g. `--bootstrap ADDR`).
    pub fn start_with(home: &Path, extra: &[&str]) -> TestNode {
        TestNode::start_wrapped(home, extra, &[])
    }

    /// Starts a node whose log (stderr) goes to the file `log`.
    pub fn start_logged(home: &Path, extra: &[&str], log: &Path) -> TestNode {
        TestNode::start_full(home, extra, &[], Stdio::from(std::fs::File::create(log).unwrap()))
    }

    /// Starts a node under a wrapper command (e.g. `strace -f -o LOG`).
    pub fn start_wrapped(home: &Path, extra: &[&str], wrapper: &[&str]) -> TestNode {
        TestNode::start_full(home, extra, wrapper, Stdio::null())
    }

    fn start_full(home: &Path, extra: &[&str], wrapper: &[&str], stderr: Stdio) -> TestNode {
        std::fs::create_dir_all(home).unwrap();
        let _ = std::fs::remove_file(home.join("node.json"));
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&*BIN);
                c
            }
            None => Command::new(&*BIN),
        };
        let child = command
            .arg("--home")
            .arg(home)
            .args(["node", "--api", "127.0.0.1:0", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(extra)
            .env_remove("SMPL_HOME")
            .env_remove("RUST_LOG")
            .env_remove("SMPL_LOG")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting smpl node");
        let node = TestNode { home: home.to_path_buf(), child };
        node.wait_ready(Duration::from_secs(60));
        node
    }

    /// The node's first libp2p listen address (with `/p2p/<peer id>`).
    pub fn p2p_addr(&self) -> String {
        let (_, id, _) = smpl_json(&self.home, &["id"]);
        id[0]["listen"][0].as_str().expect("node has a listen address").to_string()
    }

    fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = smpl(&self.home, &["id"]);
            if out.status.success() {
                return;
            }
            assert!(start.elapsed() < timeout, "node did not come up within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, like Ctrl-C, and waits for a clean exit.
    pub fn stop(mut self) {
        // The node's own pid (the child may be a wrapper such as strace).
        let pid = std::fs::read(self.home.join("node.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["pid"].as_u64())
            .map_or(self.child.id().to_string(), |p| p.to_string());
        let _ = Command::new("kill").arg("-INT").arg(pid).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not stop within 30 s of SIGINT");
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `smpl --json …`, asserts that it succeeded, and returns its lines.
pub fn json_ok(home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let (code, lines, stderr) = smpl_json(home, args);
    assert_eq!(code, 0, "smpl {args:?}: {stderr}");
    lines
}

/// Polls `check` every 100 ms until it holds; fails after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
