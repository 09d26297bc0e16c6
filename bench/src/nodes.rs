//! Real `smpl node` processes for the benchmarks that measure a whole node (scale,
//! flood): a seeder home holding a signed catalogue, the node process, its API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use smpl_index::SearchQuery;
use smpl_node::{Home, Store};
use smpl_protocol::{BlobHash, Identity, Manifest, Signed};

use crate::corpus::Corpus;
use crate::{mem, rng};

/// 30 one- and two-word queries from the corpus's vocabulary (the words of the
/// search benchmark's queries, without their filters), as a producer types them.
pub fn query_set(seed: u64) -> Vec<String> {
    Corpus::new(1, 1, seed).queries(30).into_iter().map(|q| q.words.join(" ")).collect()
}

/// The query set through the API, `rounds` times after one to warm up; each
/// search's time in ms.
pub fn api_rounds(api: &Api, queries: &[String], rounds: usize) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for round in 0..=rounds {
        for q in queries {
            let t = Instant::now();
            api.search(q)?;
            if round > 0 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    Ok(times)
}

/// A text search as `smpl search WORDS` sends it.
pub fn text_query(text: &str) -> SearchQuery {
    SearchQuery { text: Some(text.to_string()), ..SearchQuery::default() }
}

/// The `smpl` binary: `given`, or the one beside this harness.
pub fn smpl_binary(given: Option<&Path>) -> Result<PathBuf> {
    let smpl = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("smpl"),
    };
    anyhow::ensure!(smpl.exists(), "{} not found: build it (cargo build --release -p smpl)", smpl.display());
    Ok(smpl)
}

/// Builds the seeder's store once (a marker file says it is complete) and returns
/// the bytes of its envelopes.
pub fn ensure_seeder(dir: &Path, packs: usize, per_pack: usize, authors: usize, seed: u64) -> Result<u64> {
    let marker = dir.join("complete");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        return Ok(text.trim().parse()?);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let home = Home::new(dir);
    home.init()?;
    let store = Store::open(&home.db_dir())?;
    let corpus = Corpus::new(packs * per_pack, per_pack, seed);
    let keys: Vec<Identity> = (0..authors).map(|a| author_key(seed, a)).collect();
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 0..packs {
        let key = &keys[i % keys.len()];
        let m = catalogue_pack(&corpus, i, key, seed, 128);
        let envelope = m.sign(key)?;
        bytes += envelope.as_bytes().len() as u64;
        store.accept_manifest(&m, &envelope, false)?;
        if i % 1000 == 999 {
            eprintln!("  seeder: {} packs signed and stored", i + 1);
        }
    }
    store.flush()?;
    drop(store);
    eprintln!("  seeder: {packs} packs, {bytes} envelope bytes, {:.0} s", started.elapsed().as_secs_f64());
    std::fs::write(&marker, bytes.to_string())?;
    Ok(bytes)
}

/// The key that signs the packs of author `a` of a benchmark catalogue.
pub fn author_key(seed: u64, a: usize) -> Identity {
    let mut r = rng::Rng::for_item(seed, 100, a as u64);
    let mut secret = [0u8; 32];
    for chunk in secret.chunks_mut(8) {
        chunk.copy_from_slice(&r.next_u64().to_le_bytes());
    }
    Identity::from_secret_bytes(secret)
}

/// Pack `i` of `corpus` as `key` would publish it: its author and pack id, a date
/// in the past, each sample with a waveform of `points` points and hashes of its
/// own, and the content hash over them.
pub fn catalogue_pack(corpus: &Corpus, i: usize, key: &Identity, seed: u64, points: usize) -> Manifest {
    let mut m = corpus.pack(i);
    m.author = key.node_id();
    m.pack_id = smpl_protocol::PackId::derive(&m.author, &m.slug);
    // The corpus dates pack i 3,000 s after pack i - 1; past about 60,000 packs
    // that is in the future, which nodes refuse: fold them into 2020–2023.
    m.created_at = 1_600_000_000 + m.created_at.saturating_sub(1_600_000_000) % 100_000_000;
    let mut r = rng::Rng::for_item(seed, 101, i as u64);
    for s in &mut m.samples {
        s.waveform = (0..points).map(|_| r.below(256) as u8).collect();
        s.hash = BlobHash(blake3::hash(&r.next_u64().to_le_bytes()).into());
        s.preview = Some(BlobHash(blake3::hash(&r.next_u64().to_le_bytes()).into()));
    }
    m.content = smpl_protocol::collection::content_hash(m.samples.iter().map(|s| (&s.name, s.hash)));
    m
}

/// How a process or thread that stands in for another machine is kept from the
/// producer's share of this one: a nice value, and the CPUs it may run on (any
/// when `None`).
#[derive(Clone, Debug, Default)]
pub struct Apart {
    pub nice: i32,
    pub cpus: Option<Vec<usize>>,
}

impl Apart {
    /// Applies this to the calling thread; the threads and processes it starts
    /// afterwards inherit it.
    pub fn apply_here(&self) -> Result<()> {
        if self.nice != 0 {
            // SAFETY: setpriority on this thread's own id (Linux gives each thread
            // its own nice value).
            let tid = unsafe { libc::gettid() };
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, self.nice) } != 0 {
                bail!("setting a thread's priority: {}", std::io::Error::last_os_error());
            }
        }
        if let Some(cpus) = &self.cpus {
            pin_here(cpus)?;
        }
        Ok(())
    }
}

/// Keeps the calling thread, and what it starts afterwards, on `cpus`.
pub fn pin_here(cpus: &[usize]) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it, and
    // sched_setaffinity(0, ..) reads it for the calling thread.
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    anyhow::ensure!(ok, "keeping a thread on CPUs {}: {}", cpu_list(cpus), std::io::Error::last_os_error());
    Ok(())
}

/// CPUs the calling thread may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Where [`NodeProcess`] writes the log of the node in `home`: beside the home, so
/// that it outlives the home's removal.
pub fn node_log(home: &Path) -> PathBuf {
    home.with_extension("log")
}

/// A `smpl node` process on 127.0.0.1 with mDNS off.
pub struct NodeProcess {
    child: Child,
    home: PathBuf,
}

impl NodeProcess {
    pub fn start(smpl: &Path, home: &Path, extra: &[&str]) -> Result<NodeProcess> {
        NodeProcess::start_apart(smpl, home, extra, &Apart::default(), None)
    }

    /// [`NodeProcess::start`] held apart as `apart` says (through `taskset` and
    /// `nice`, which exec the node in the same process): a peer that stands in for
    /// another machine. `log` is its `RUST_LOG`, the harness's own when `None`.
    pub fn start_apart(
        smpl: &Path,
        home: &Path,
        extra: &[&str],
        apart: &Apart,
        log: Option<&str>,
    ) -> Result<NodeProcess> {
        let mut command = match &apart.cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("--cpu-list").arg(cpu_list(cpus)).arg("nice");
                taskset
            }
            None => Command::new("nice"),
        };
        command.arg("-n").arg(apart.nice.to_string()).arg(smpl);
        if let Some(log) = log {
            command.env("RUST_LOG", log);
        }
        let mut child = command
            .arg("--home")
            .arg(home)
            .args([
                "node",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--listen",
                "/ip4/127.0.0.1/udp/0/quic-v1",
            ])
            .args(extra)
            .env_remove("SMPL_HOME")
            .stdout(Stdio::null())
            .stderr(std::fs::File::options().create(true).append(true).open(node_log(home))?)
            .spawn()
            .with_context(|| format!("starting {}", smpl.display()))?;
        // The node writes its node.json (pid, API address) once it serves.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Home::new(home).node_info().ok().map(|info| info.pid) != Some(child.id()) {
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                bail!("the node in {} did not start", home.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(NodeProcess { child, home: home.to_path_buf() })
    }

    /// Waits until the node has indexed everything queued: a seeder built by
    /// [`ensure_seeder`] indexes its whole catalogue when it first starts, work a
    /// measurement must not share the machine with.
    pub fn settle(&self) -> Result<()> {
        let api = Api::new(&self.home)?;
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let queued =
                api.get("/v1/status")?["index_queue"].as_u64().context("no index_queue in the status")?;
            if queued == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the node in {} still has {queued} listings to index", self.home.display());
            }
            eprintln!("  {}: {queued} listings to index before the run", self.home.display());
            std::thread::sleep(Duration::from_secs(10));
        }
    }

    pub fn p2p_addr(&self) -> Result<String> {
        let info = Home::new(&self.home).node_info()?;
        info.listen.into_iter().find(|a| a.contains("/tcp/")).context("the seeder has no TCP address")
    }

    /// Resident set and its anonymous part, bytes.
    pub fn rss(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Ok((field("VmRSS:"), field("RssAnon:")))
    }

    /// Bytes the node has caused to be written to disk (`/proc/PID/io`).
    pub fn written(&self) -> Result<u64> {
        mem::io_field(&self.child.id().to_string(), "write_bytes").context("reading the node's writes")
    }

    /// Processor time the node has taken, in clock ticks (`/proc/PID/stat`).
    fn cpu_ticks(&self) -> Result<u64> {
        mem::cpu_ticks(&self.child.id().to_string()).context("reading the node's processor time")
    }

    /// Waits until the node has used under `share` of a core for a whole second
    /// (merges and other work a flood left behind are over), or `limit` has
    /// passed; how long it waited, and whether it became quiet.
    pub fn quiet(&self, share: f64, limit: Duration) -> Result<(Duration, bool)> {
        let per_second = mem::ticks_per_second();
        let started = Instant::now();
        let mut last = self.cpu_ticks()?;
        while started.elapsed() < limit {
            std::thread::sleep(Duration::from_secs(1));
            let now = self.cpu_ticks()?;
            if ((now - last) as f64) < share * per_second {
                return Ok((started.elapsed(), true));
            }
            last = now;
        }
        Ok((started.elapsed(), false))
    }

    /// Time the node's threads have run, and waited for a core while ready to run
    /// (`/proc/PID/task/*/schedstat`), ns, summed per thread name without its
    /// number (`smpl-ingest-1` counts as `smpl-ingest`).
    pub fn run_queue_times(&self) -> Result<BTreeMap<String, [u64; 2]>> {
        let mut waits = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let task = task?.path();
            // A thread that ended since the listing has no files left.
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(task.join("comm")), std::fs::read_to_string(task.join("schedstat")))
            else {
                continue;
            };
            let name =
                comm.trim().trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches(['-', '_']);
            let times: &mut [u64; 2] = waits.entry(name.to_string()).or_default();
            for (sum, time) in times.iter_mut().zip(schedstat_times(&stat)) {
                *sum += time;
            }
        }
        Ok(waits)
    }

    /// Stops the node as Ctrl-C does, and waits for it.
    pub fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("the node in {} did not stop within 30 s", self.home.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

/// A harness that fails midway (an error returned through `?`) stops its nodes
/// too: one left running would share its home with the next run's.
impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The node's local HTTP API, as the CLI calls it.
pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(home: &Path) -> Result<Api> {
        let home = Home::new(home);
        Ok(Api {
            base: home.node_info()?.api,
            token: home.api_token()?,
            agent: ureq::Agent::new_with_defaults(),
        })
    }

    pub fn post(&self, query: &SearchQuery) -> Result<serde_json::Value> {
        let mut answer = self
            .agent
            .post(format!("{}/v1/search", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(query)?;
        Ok(answer.body_mut().read_json()?)
    }

    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        let mut answer = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()?;
        Ok(answer.body_mut().read_json()?)
    }

    /// Whether the node holds the listing of `pack`.
    pub fn has_pack(&self, pack: &str) -> bool {
        self.get(&format!("/v1/packs/{pack}")).is_ok()
    }

    pub fn search(&self, text: &str) -> Result<serde_json::Value> {
        self.post(&text_query(text))
    }

    /// Packs the node's index holds.
    pub fn pack_count(&self) -> Result<usize> {
        let answer = self.post(&SearchQuery { packs: true, limit: 1, ..SearchQuery::default() })?;
        Ok(answer["total"].as_u64().unwrap_or(0) as usize)
    }
}

pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

/// Runs `smpl --home HOME --json ARGS` and returns its last JSON line.
pub fn smpl_json(smpl: &Path, home: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new(smpl)
        .arg("--home")
        .arg(home)
        .arg("--json")
        .args(args)
        .env_remove("SMPL_HOME")
        .output()?;
    if !out.status.success() {
        bail!("smpl {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rfind(|l| !l.trim().is_empty()).context("no output")?;
    Ok(serde_json::from_str(last)?)
}

/// Time the calling thread has run, and waited for a core while ready to run, ns.
pub fn own_run_queue_times() -> [u64; 2] {
    std::fs::read_to_string("/proc/thread-self/schedstat").map_or([0; 2], |stat| schedstat_times(&stat))
}

/// The first two fields of a `schedstat` line: time spent running, and ready on a
/// run queue, ns.
fn schedstat_times(stat: &str) -> [u64; 2] {
    let mut fields = stat.split_whitespace().map(|f| f.parse().unwrap_or(0));
    [fields.next().unwrap_or(0), fields.next().unwrap_or(0)]
}
