//! The NAT lab: real `smpl` processes in network namespaces this test builds and
//! removes itself, with home routers made of nftables.
//!
//! ```text
//!                      "internet" 198.51.100.0/24 (a bridge in namespace ix)
//!        ┌───────────────────┬─────────────────────┬───────────────────┐
//!   P 198.51.100.10     router RA .11           router RB .12
//!   bootstrap, relay        │ 10.0.1.0/24           │ 10.0.2.0/24
//!                        A 10.0.1.2             B 10.0.2.2
//! ```
//!
//! The routers are home routers: endpoint-independent mapping (one public port
//! per inside socket, whatever the destination: a dynamic nftables map from the
//! public UDP port to the inside address and port, filled as packets leave and
//! used to translate packets coming back, as iroh's patchbay lab does it, since
//! Linux `masquerade` alone does not keep the mapping endpoint-independent) and
//! address-and-port-dependent filtering (only replies to flows the inside
//! opened come in). Addresses exist only inside the namespaces; the routers count
//! and drop anything addressed outside the lab.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables), which `scripts/setup.sh`
//! installs; without them the test says why and does nothing. `SMPL_LAB_MB=100`
//! makes the pack's long file 100 MB, for a transfer worth timing, and
//! `SMPL_LAB_RELAY_RATE=N` sets the bytes a second each peer may send through
//! P's iroh relay, and `SMPL_LAB_DELAY_MS=N` delays what each home router sends
//! to the internet by N ms; `SMPL_LAB_LOG` replaces the nodes' `RUST_LOG` (their
//! logs are printed when a test fails). The tests print their figures on stderr
//! (`-- --nocapture`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{BIN, make_mixed_pack};
use serde_json::Value;

const P_IP: &str = "198.51.100.10";
/// What the nodes log: provider records stored are checked.
const LOG: &str = "warn,smpl_node=info,smpl_node::net::providers=debug";

/// A second public node, not declared a relay.
const Q_IP: &str = "198.51.100.13";
const LISTEN: [&str; 4] = ["--listen", "/ip4/0.0.0.0/udp/4747/quic-v1", "--listen", "/ip4/0.0.0.0/tcp/4747"];

/// Labs built by this process, for unique namespace names.
static LABS: AtomicUsize = AtomicUsize::new(0);

/// Held by the lab running: labs run one at a time. Each runs three or four nodes
/// whose hole punching works to timeouts; with five labs at once on a 2-core
/// machine, iroh stayed on the relay path in some runs.
static ONE_LAB: Mutex<()> = Mutex::new(());

/// The namespaces and node processes of one lab; dropping it kills the nodes and
/// deletes the namespaces, also when the test fails half-way.
struct Lab {
    prefix: String,
    /// Each node's name and process.
    nodes: Vec<(String, Child)>,
    dir: PathBuf,
    /// Released after [`Lab`]'s `drop` has taken the lab down.
    _one_at_a_time: MutexGuard<'static, ()>,
}

fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// P counts the bytes it receives from the two home routers.
const P_RULES: &str = r#"
table ip lab {
    counter from_homes {}
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr { 198.51.100.11, 198.51.100.12 } counter name from_homes
    }
}
"#;

/// How the two home routers translate.
#[derive(Clone, Copy, Debug)]
enum Nat {
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    Home,
    /// A new random public port for every flow (`masquerade random`), and the
    /// same filtering: no hole punching gets through.
    Symmetric,
}

/// A router's rules: `wan` faces the internet with address `public`.
fn router_rules(nat: Nat, public: &str) -> String {
    let translation = match nat {
        Nat::Home => home_translation(public),
        Nat::Symmetric => r#"
table ip nat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oif "wan" masquerade random
    }
}
"#
        .to_string(),
    };
    translation + FILTER
}

/// Address-and-port-dependent filtering, and the counters of the lab's edges.
const FILTER: &str = r#"
table ip filter {
    counter outside {}
    counter unsolicited {}
    chain forward {
        type filter hook forward priority filter; policy accept;
        # Nothing leaves the lab (whose homes are 10.0.0.0/8).
        oif "wan" ip daddr != { 198.51.100.0/24, 10.0.0.0/8 } counter name outside drop
        # Only replies to flows the inside opened come in.
        iif "wan" ct state established,related accept
        iif "wan" counter name unsolicited drop
    }
}
"#;

fn home_translation(public: &str) -> String {
    format!(
        r#"
table ip nat {{
    # Endpoint-independent mapping: the public UDP port of each inside socket,
    # the same for every destination.
    map mapped {{
        type inet_service : ipv4_addr . inet_service
        flags dynamic,timeout
        timeout 300s
        size 65536
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iif "wan" meta l4proto udp dnat ip to udp dport map @mapped
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oif "wan" meta l4proto udp update @mapped {{ udp sport timeout 300s : ip saddr . udp sport }}
        oif "wan" snat ip to {public}
    }}
}}
"#
    )
}

/// A tap device opened in namespace `ns`, named `name`.
fn open_tap(ns: &str, name: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    // Only this thread enters the namespace, and only while it opens the device.
    let own = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let lab = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    assert_eq!(unsafe { libc::setns(lab.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "entering {ns}");
    let tap = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").unwrap();
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req =
        IfReq { name: [0; 16], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    let made = unsafe { libc::ioctl(tap.as_raw_fd(), TUNSETIFF, &mut req) };
    assert_eq!(unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "leaving {ns}");
    assert_eq!(made, 0, "making tap {name}: {}", std::io::Error::last_os_error());
    tap
}

/// The lab's internet as a switch: one tap device per port, made in namespace
/// `ix` and moved into the port's namespace under the port's name. Every frame
/// read from a port is written, after that port's delay, to the port its
/// destination MAC was last seen on, or to all others when it was not seen yet
/// (or is a broadcast). Its threads end when the devices go with their
/// namespaces.
fn delay_hub(ix: &str, ports: &[(String, &str, Duration)]) {
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut taps = Vec::new();
    for (i, (ns, name, _)) in ports.iter().enumerate() {
        let tap_name = format!("hub{i}");
        taps.push(Arc::new(Mutex::new(open_tap(ix, &tap_name))));
        must(&["ip", "-n", ix, "link", "set", &tap_name, "netns", ns]);
        must(&["ip", "-n", ns, "link", "set", &tap_name, "name", name]);
        must(&["ip", "-n", ns, "link", "set", name, "up"]);
    }
    let seen: Arc<Mutex<HashMap<[u8; 6], usize>>> = Arc::default();
    for (i, (_, _, delay)) in ports.iter().enumerate() {
        let reader = taps[i].lock().unwrap().try_clone().unwrap();
        let (taps, seen, delay) = (taps.clone(), seen.clone(), *delay);
        let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut frame = vec![0u8; 65536];
            while let Ok(n) = reader.read(&mut frame) {
                if tx.send((Instant::now() + delay, frame[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            while let Ok((due, frame)) = rx.recv() {
                if frame.len() < 14 {
                    continue;
                }
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let (dst, src): ([u8; 6], [u8; 6]) =
                    (frame[..6].try_into().unwrap(), frame[6..12].try_into().unwrap());
                let to = {
                    let mut seen = seen.lock().unwrap();
                    seen.insert(src, i);
                    seen.get(&dst).copied()
                };
                for (j, tap) in taps.iter().enumerate() {
                    if j != i && to.is_none_or(|to| to == j) {
                        let _ = tap.lock().unwrap().write(&frame);
                    }
                }
            }
        });
    }
}

impl Lab {
    /// Builds the namespaces, links, addresses and routers; `None` when this
    /// machine cannot (not root, or a tool missing), with the reason printed.
    fn build(dir: &Path, nat: Nat) -> Option<Lab> {
        let uid = run(&["id", "-u"]);
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("nat_lab: skipped: network namespaces need root");
            return None;
        }
        for tool in ["ip", "nft"] {
            if Command::new(tool).arg("-V").output().is_err() {
                eprintln!("nat_lab: skipped: `{tool}` is not installed (scripts/setup.sh installs it)");
                return None;
            }
        }
        let lab = Lab {
            _one_at_a_time: ONE_LAB.lock().unwrap_or_else(PoisonError::into_inner),
            prefix: format!("smpl{}{}", std::process::id(), LABS.fetch_add(1, Ordering::Relaxed)),
            nodes: Vec::new(),
            dir: dir.to_path_buf(),
        };
        for n in ["ix", "p", "q", "ra", "rb", "a", "b"] {
            must(&["ip", "netns", "add", &lab.ns(n)]);
            must(&["ip", "-n", &lab.ns(n), "link", "set", "lo", "up"]);
        }
        let (ix, p, ra, rb, a, b) =
            (lab.ns("ix"), lab.ns("p"), lab.ns("ra"), lab.ns("rb"), lab.ns("a"), lab.ns("b"));
        let q = lab.ns("q");
        let ports = [(&p, "eth0"), (&q, "eth0"), (&ra, "wan"), (&rb, "wan")];
        // SMPL_LAB_DELAY_MS=N: the internet is a hub in this process that holds
        // every frame a router sends for N ms (what `netem delay` on each router's
        // wan would do, which this machine's kernel lacks); otherwise a bridge.
        match std::env::var("SMPL_LAB_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) => {
                let delays = [0, 0, ms, ms].map(Duration::from_millis);
                let ports: Vec<(String, &str, Duration)> =
                    ports.iter().zip(delays).map(|((ns, name), d)| ((*ns).clone(), *name, d)).collect();
                delay_hub(&ix, &ports);
            }
            None => {
                must(&["ip", "-n", &ix, "link", "add", "br0", "type", "bridge"]);
                must(&["ip", "-n", &ix, "link", "set", "br0", "up"]);
                for (i, (ns, name)) in ports.iter().enumerate() {
                    let port = format!("ix{i}");
                    must(&[
                        "ip", "-n", &ix, "link", "add", &port, "type", "veth", "peer", "name", name, "netns",
                        ns,
                    ]);
                    must(&["ip", "-n", &ix, "link", "set", &port, "master", "br0"]);
                    must(&["ip", "-n", &ix, "link", "set", &port, "up"]);
                    must(&["ip", "-n", ns, "link", "set", name, "up"]);
                }
            }
        }
        must(&["ip", "-n", &p, "addr", "add", &format!("{P_IP}/24"), "dev", "eth0"]);
        must(&["ip", "-n", &q, "addr", "add", &format!("{Q_IP}/24"), "dev", "eth0"]);
        // What P receives from the homes: control traffic and what it relays.
        let counting = dir.join("p.nft");
        std::fs::write(&counting, P_RULES).unwrap();
        must(&["ip", "netns", "exec", &p, "nft", "-f", counting.to_str().unwrap()]);
        for (router, home, public, net) in
            [(&ra, &a, "198.51.100.11", "10.0.1"), (&rb, &b, "198.51.100.12", "10.0.2")]
        {
            must(&["ip", "-n", router, "addr", "add", &format!("{public}/24"), "dev", "wan"]);
            must(&[
                "ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns",
                home,
            ]);
            must(&["ip", "-n", router, "addr", "add", &format!("{net}.1/24"), "dev", "lan"]);
            must(&["ip", "-n", router, "link", "set", "lan", "up"]);
            must(&["ip", "-n", home, "addr", "add", &format!("{net}.2/24"), "dev", "eth0"]);
            must(&["ip", "-n", home, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", home, "route", "add", "default", "via", &format!("{net}.1")]);
            must(&["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            let rules = dir.join(format!("{router}.nft"));
            std::fs::write(&rules, router_rules(nat, public)).unwrap();
            must(&["ip", "netns", "exec", router, "nft", "-f", rules.to_str().unwrap()]);
        }
        Some(lab)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn home(&self, node: &str) -> PathBuf {
        self.dir.join(node)
    }

    /// `smpl --home <node> --json ARGS…` inside the node's namespace.
    fn smpl(&self, node: &str, args: &[&str]) -> (bool, Vec<Value>, String) {
        let home = self.home(node);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), BIN.as_str(), "--home"])
            .arg(&home)
            .arg("--json")
            .args(args)
            .env_remove("SMPL_HOME")
            .output()
            .expect("running smpl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (out.status.success(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Starts `smpl node` in the node's namespace, its log in `<node>.log`.
    fn start(&mut self, node: &str, extra: &[&str]) {
        let home = self.home(node);
        std::fs::create_dir_all(&home).unwrap();
        let log = std::fs::File::create(self.dir.join(format!("{node}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(node), BIN.as_str(), "--home"])
            .arg(&home)
            .args(["node", "--no-mdns", "--api", "127.0.0.1:0"])
            .args(LISTEN)
            .args(extra)
            .env_remove("SMPL_HOME")
            // Provider records stored, to check what NATed nodes announce.
            .env("RUST_LOG", std::env::var("SMPL_LAB_LOG").unwrap_or(LOG.into()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting smpl node");
        self.nodes.push((node.to_string(), child));
        self.wait(&format!("{node} to answer"), Duration::from_secs(60), || self.smpl(node, &["id"]).0);
    }

    /// Kills a node outright (SIGKILL).
    fn kill(&mut self, node: &str) {
        for (name, child) in &mut self.nodes {
            if name == node {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    fn log(&self, node: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{node}.log"))).unwrap_or_default()
    }

    fn wait(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn logs(&self) -> String {
        ["p", "q", "a", "b"].iter().map(|n| format!("--- {n}.log\n{}", self.log(n))).collect()
    }

    /// Packets a router counted under `counter`.
    fn counted(&self, router: &str, counter: &str) -> u64 {
        self.counter(router, "filter", counter, "packets")
    }

    /// `what` (`packets` or `bytes`) of an nftables counter in namespace `node`.
    fn counter(&self, node: &str, table: &str, counter: &str, what: &str) -> u64 {
        let ns = self.ns(node);
        let out = run(&["ip", "netns", "exec", &ns, "nft", "list", "counter", "ip", table, counter]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != what)
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter {counter} on {node}: {text}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        for n in ["a", "b", "ra", "rb", "p", "q", "ix"] {
            let ns = self.ns(n);
            // Whatever still runs in the namespace goes with it.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

fn peer<'a>(peers: &'a [Value], node_id: &str) -> Option<&'a Value> {
    peers.iter().find(|p| p["node_id"] == node_id)
}

/// Two homes behind home routers trade through a public node: B finds A's paid
/// pack by search and buys it, and the libp2p connection between them, first
/// relayed through P, becomes direct by hole punching (DCUtR); B fetches the pack
/// directly from A over iroh, P seeing under 5 % of its bytes.
/// A lab where B has found and bought A's paid pack.
struct Bought {
    // The lab goes first, so the nodes stop before their homes are removed.
    lab: Lab,
    dir: tempfile::TempDir,
    pack_id: String,
    a_node: String,
    p_node: String,
    /// When the order was issued.
    at: Instant,
    /// When B was started.
    b_started: Instant,
}

/// P starts as bootstrap and relay, A and B behind routers of kind `nat` join
/// through P's invite; A publishes a paid pack, with a long tone of `mb` MB in it
/// if given, and B finds it by search and buys it.
fn meet_and_buy(nat: Nat, mb: Option<f32>) -> Option<Bought> {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::build(dir.path(), nat)?;

    // SMPL_LAB_RELAY_RATE=N lets each peer send N bytes a second through P's
    // iroh relay, to measure the relay itself rather than its default limit.
    if let Ok(rate) = std::env::var("SMPL_LAB_RELAY_RATE") {
        std::fs::create_dir_all(lab.home("p")).unwrap();
        let config = format!("[relay_server]\ndata_bytes_per_second = {rate}\n");
        std::fs::write(lab.home("p").join("config.toml"), config).unwrap();
    }
    lab.start("p", &["--relay-server"]);
    let (_, invite, _) = lab.smpl("p", &["invite"]);
    let p_invite = invite[0]["invite"].as_str().expect("P has an invite").to_string();
    assert!(p_invite.contains(&format!("/ip4/{P_IP}/")), "P's invite names its public address: {p_invite}");

    lab.start("a", &["--bootstrap", &p_invite, "--seller-policy", "auto"]);
    let b_started = Instant::now();
    lab.start("b", &["--bootstrap", &p_invite]);

    // A learns from AutoNAT that it is not reachable, and gets a relayed address
    // through P, which its invite carries.
    lab.wait("A's relayed address", Duration::from_secs(30), || {
        let (_, invite, _) = lab.smpl("a", &["invite"]);
        invite.first().and_then(|i| i["invite"].as_str()).is_some_and(|l| l.contains("/p2p-circuit/"))
    });
    let p_public = format!("network: publicly reachable at /ip4/{P_IP}/");
    assert!(lab.log("p").contains(&p_public), "smpl node says P is public\n{}", lab.logs());
    lab.wait("A's AutoNAT verdict", Duration::from_secs(30), || {
        lab.log("a").contains("not publicly reachable")
    });
    let (_, a_id, _) = lab.smpl("a", &["id"]);
    let a_node = a_id[0]["node_id"].as_str().unwrap().to_string();
    let (_, invite, _) = lab.smpl("a", &["invite"]);
    let a_peer =
        invite[0]["invite"].as_str().unwrap().split(',').next().unwrap().rsplit("/p2p/").next().unwrap();
    let a_peer = a_peer.to_string();

    let pack = dir.path().join("pack");
    make_mixed_pack(&pack);
    // SMPL_LAB_MB=N makes it a tone of about N MB, to measure a larger transfer.
    if let Some(mb) = std::env::var("SMPL_LAB_MB").ok().and_then(|v| v.parse::<f32>().ok()).or(mb) {
        // 16-bit mono at 44.1 kHz: 88,200 bytes a second.
        common::write_sound(&pack.join("Long_Tone.wav"), mb * 1_000_000.0 / 88_200.0, 110.0, false);
    }
    let (ok, out, err) = lab.smpl(
        "a",
        &["publish", pack.to_str().unwrap(), "--title", "Lab Drums", "--price", "4.99", "--currency", "USD"],
    );
    assert!(ok, "publish: {err}");
    let pack_id = out.last().unwrap()["pack_id"].as_str().unwrap().to_string();

    // B finds it by search (the listing reached B through P).
    lab.wait("B to find A's pack", Duration::from_secs(30), || {
        let (_, hits, _) = lab.smpl("b", &["search", "--packs", "Lab Drums"]);
        hits.iter().any(|h| h["pack_id"] == pack_id.as_str())
    });

    // B buys: the order reaches A over libp2p, relayed through P at first.
    let (ok, out, err) = lab.smpl("b", &["buy", &pack_id, "--wait", "30"]);
    assert!(ok, "buy: {err}\n{}", lab.logs());
    assert_eq!(out[0]["status"], "issued", "{out:?}");
    let (_, p_id, _) = lab.smpl("p", &["id"]);
    let p_node = p_id[0]["node_id"].as_str().unwrap().to_string();

    // P stored A's provider record for the pack, and it does not carry A's
    // private addresses alone: what A announces is its public or relayed address.
    let from_a = |log: String| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("storing a provider record") && l.contains(a_peer.as_str()))
            .map(str::to_string)
            .collect()
    };
    lab.wait("P to store A's provider record", Duration::from_secs(30), || !from_a(lab.log("p")).is_empty());
    for line in from_a(lab.log("p")) {
        // The log's fields are coloured: the addresses follow the field name.
        let addrs = line.split("addrs").nth(1).unwrap_or_default();
        let private_only = addrs.contains("/ip4/10.") && !addrs.contains("/ip4/198.51.100.");
        assert!(!private_only, "A announced its private addresses only: {line}");
    }
    Some(Bought { lab, dir, pack_id, a_node, p_node, at: Instant::now(), b_started })
}

#[test]
fn home_to_home_through_a_public_relay_becomes_direct() {
    let started = Instant::now();
    // 4 MB: the relay carries a few packets of every new iroh connection (the
    // first ones, sent both ways at once), a fixed cost next to a real pack.
    let Some(Bought { lab, dir, pack_id, a_node, at: punched, b_started, .. }) =
        meet_and_buy(Nat::Home, Some(4.0))
    else {
        return;
    };

    // The connection between A and B becomes direct by hole punching.
    lab.wait("a direct connection between A and B", Duration::from_secs(30), || {
        let (_, peers, _) = lab.smpl("b", &["peers"]);
        peer(&peers, &a_node).is_some_and(|p| p["path"] == "direct")
    });
    assert!(lab.log("b").contains("by hole punching") || lab.log("a").contains("by hole punching"));
    let (_, peers, _) = lab.smpl("b", &["peers"]);
    let a = peer(&peers, &a_node).unwrap();
    assert_eq!(a["nat"], "private", "B knows it is behind NAT: {a}");
    assert!(a["rtt_ms"].as_f64().is_some(), "a round-trip time: {a}");
    let direct: Vec<&str> = a["addrs"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(
        direct.iter().any(|addr| addr.starts_with("/ip4/198.51.100.11/") && !addr.contains("p2p-circuit")),
        "B reaches A at A's router's public address: {direct:?}"
    );
    eprintln!(
        "nat_lab: direct {:.1} s after the purchase, {:.1} s after B started (A published meanwhile)",
        punched.elapsed().as_secs_f64(),
        b_started.elapsed().as_secs_f64()
    );

    // B fetches the pack from A over iroh: both punched toward each other's
    // public address when they met through the relay, so the transfer is direct
    // and P carries (next to) none of it.
    let before = lab.counter("p", "lab", "from_homes", "bytes");
    let out_dir = dir.path().join("library");
    let fetch_started = Instant::now();
    let (ok, out, err) = lab.smpl("b", &["fetch", &pack_id, "--out", out_dir.to_str().unwrap()]);
    assert!(ok, "fetch: {err}\n{}", lab.logs());
    let fetched =
        out.iter().rev().find_map(|o| o["downloaded"].as_u64()).expect("fetch reports the bytes downloaded");
    assert!(fetched > 0, "{out:?}");
    let relayed = lab.counter("p", "lab", "from_homes", "bytes") - before;
    let (_, p_status, _) = lab.smpl("p", &["status"]);
    eprintln!("nat_lab: P's relay bytes: {}", p_status[0]["relay_bytes"]);
    eprintln!(
        "nat_lab: fetched {fetched} bytes in {:.1} s; P received {relayed} bytes from the homes meanwhile ({:.1} %)",
        fetch_started.elapsed().as_secs_f64(),
        relayed as f64 * 100.0 / fetched as f64
    );
    assert!(relayed * 20 < fetched, "P relayed {relayed} of {fetched} bytes\n{}", lab.logs());

    // The routers turned away unsolicited packets, and nothing was addressed
    // outside the lab.
    assert_eq!(lab.counted("ra", "outside"), 0, "A's side addressed something outside the lab");
    assert_eq!(lab.counted("rb", "outside"), 0, "B's side addressed something outside the lab");
    eprintln!(
        "nat_lab: unsolicited packets dropped: RA {}, RB {}; whole test {:.1} s",
        lab.counted("ra", "unsolicited"),
        lab.counted("rb", "unsolicited"),
        started.elapsed().as_secs_f64()
    );
}

/// Behind symmetric NATs hole punching cannot work: B still finds and buys A's
/// pack through P's relay, `smpl peers` says the connection is relayed, and the
/// audio flows through the iroh relay P runs, whose certificate A and B pinned by
/// the hash P told them.
#[test]
fn symmetric_to_symmetric_trades_through_the_relay() {
    let Some(Bought { lab, dir, pack_id, a_node, p_node, .. }) = meet_and_buy(Nat::Symmetric, None) else {
        return;
    };
    // DCUtR tries and fails; the connection stays relayed through P.
    lab.wait("a failed hole punch", Duration::from_secs(30), || {
        lab.log("b").contains("hole punching to") || lab.log("a").contains("hole punching to")
    });
    let (_, peers, _) = lab.smpl("b", &["peers"]);
    let a = peer(&peers, &a_node).expect("B is connected to A");
    assert_eq!(a["path"], "relayed", "{a}");
    assert_eq!(a["relay"], p_node.as_str(), "{a}");

    let before = lab.counter("p", "lab", "from_homes", "bytes");
    let out_dir = dir.path().join("library");
    let fetch_started = Instant::now();
    let (ok, out, err) = lab.smpl("b", &["fetch", &pack_id, "--out", out_dir.to_str().unwrap()]);
    assert!(ok, "fetch through the relay: {err}\n{}", lab.logs());
    let secs = fetch_started.elapsed().as_secs_f64();
    let fetched = out.iter().rev().find_map(|o| o["downloaded"].as_u64()).expect("fetch reports its bytes");
    let through_p = lab.counter("p", "lab", "from_homes", "bytes") - before;
    assert!(
        through_p > fetched,
        "the pack's {fetched} bytes went through P ({through_p} bytes from the homes)"
    );
    let relay_bytes = |node: &str| {
        let (_, status, _) = lab.smpl(node, &["status"]);
        status[0]["relay_bytes"].clone()
    };
    let (p_relay, b_relay) = (relay_bytes("p"), relay_bytes("b"));
    assert!(p_relay["forwarded"].as_u64().unwrap() >= fetched, "P counts what it forwarded: {p_relay}");
    assert!(b_relay["received"].as_u64().unwrap() >= fetched, "B counts what it received: {b_relay}");
    eprintln!(
        "nat_lab: fetched {fetched} bytes through P's relay in {secs:.1} s; P forwarded {p_relay}, B {b_relay}"
    );
    assert_eq!(lab.counted("ra", "outside"), 0);
    assert_eq!(lab.counted("rb", "outside"), 0);
}

/// P, the only path between two symmetric NATs, is killed in the middle of a
/// relayed fetch: the fetch fails with a clear message, and nothing half-written
/// lands in the library.
#[test]
fn losing_the_relay_mid_transfer_leaves_the_library_clean() {
    // About 8 s through P's relay at its 2 MiB/s a peer.
    let Some(Bought { mut lab, dir, pack_id, .. }) = meet_and_buy(Nat::Symmetric, Some(16.0)) else { return };
    let out_dir = dir.path().join("library");
    let fetch = Command::new("ip")
        .args(["netns", "exec", &lab.ns("b"), BIN.as_str(), "--home"])
        .arg(lab.home("b"))
        .args(["fetch", &pack_id, "--out", out_dir.to_str().unwrap()])
        .env_remove("SMPL_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the download is under way: bytes arrive at B through the relay.
    lab.wait("the relayed download to start", Duration::from_secs(30), || {
        let (_, status, _) = lab.smpl("b", &["status"]);
        status[0]["relay_bytes"]["received"].as_u64().unwrap_or(0) > 1_000_000
    });
    lab.kill("p");
    let started = Instant::now();
    let out = fetch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("nat_lab: the fetch ended {:.1} s after P was killed: {err}", started.elapsed().as_secs_f64());
    assert!(!out.status.success(), "the fetch cannot finish without its only path");
    assert!(err.contains("could not fetch"), "a clear message: {err}");
    let written = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "nothing half-written lands in the library");
}

/// Once A and B are connected directly, losing the relay costs them nothing: P is
/// killed, and B still fetches the pack from A over the direct path.
#[test]
fn the_direct_path_outlives_the_relay() {
    let Some(Bought { mut lab, dir, pack_id, a_node, .. }) = meet_and_buy(Nat::Home, None) else { return };
    lab.wait("a direct connection between A and B", Duration::from_secs(30), || {
        let (_, peers, _) = lab.smpl("b", &["peers"]);
        peer(&peers, &a_node).is_some_and(|p| p["path"] == "direct")
    });
    lab.kill("p");
    let out_dir = dir.path().join("library");
    let (ok, out, err) = lab.smpl("b", &["fetch", &pack_id, "--out", out_dir.to_str().unwrap()]);
    assert!(ok, "fetch without the relay: {err}\n{}", lab.logs());
    let files = out.iter().rev().find_map(|o| o["files"].as_u64()).expect("fetch reports its files");
    assert!(files > 0, "{out:?}");
    let (_, peers, _) = lab.smpl("b", &["peers"]);
    assert_eq!(peer(&peers, &a_node).map(|p| p["path"].clone()), Some("direct".into()), "{peers:?}");
}

/// A public node that was not declared a relay becomes one once AutoNAT confirms
/// it public: Q joins through P (whose AutoNAT server dials Q back), and A, behind
/// a home router and told only of Q, gets its relayed address through Q and takes
/// up the iroh relay Q then runs.
#[test]
fn a_node_autonat_finds_public_relays_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut lab) = Lab::build(dir.path(), Nat::Home) else { return };
    lab.start("p", &["--relay-server"]);
    let (_, invite, _) = lab.smpl("p", &["invite"]);
    let p_invite = invite[0]["invite"].as_str().unwrap().to_string();
    lab.start("q", &["--bootstrap", &p_invite]);
    lab.wait("Q to relay for others", Duration::from_secs(60), || {
        lab.log("q").contains("relaying for peers behind NAT")
    });
    assert!(lab.log("q").contains(&format!("network: publicly reachable at /ip4/{Q_IP}/")), "{}", lab.logs());
    let (_, invite, _) = lab.smpl("q", &["invite"]);
    let q_invite = invite[0]["invite"].as_str().unwrap().to_string();
    let q_peer = q_invite.split(',').next().and_then(|a| a.rsplit("/p2p/").next()).unwrap().to_string();

    lab.start("a", &["--bootstrap", &q_invite]);
    lab.wait("A's relayed address through Q", Duration::from_secs(60), || {
        let (_, invite, _) = lab.smpl("a", &["invite"]);
        invite
            .first()
            .and_then(|i| i["invite"].as_str())
            .is_some_and(|l| l.contains(&format!("/ip4/{Q_IP}/")) && l.contains("/p2p-circuit/"))
    });
    let (_, invite, _) = lab.smpl("a", &["invite"]);
    assert!(
        invite[0]["invite"].as_str().unwrap().contains(&format!("/p2p/{q_peer}/p2p-circuit")),
        "{invite:?}"
    );
    // A meets P too (through Q), so it may home at either relay: the faster.
    let q_relay = format!("https://{Q_IP}:");
    lab.wait("A to use Q's iroh relay", Duration::from_secs(60), || {
        lab.log("a").lines().any(|l| l.contains("using the iroh relay a peer runs") && l.contains(&q_relay))
    });
    lab.wait("A's data plane homed at a relay", Duration::from_secs(60), || {
        lab.log("a").contains("reachable through the iroh relay https://")
    });
    assert_eq!(lab.counted("ra", "outside"), 0);
}
