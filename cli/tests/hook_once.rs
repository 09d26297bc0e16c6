//! A paid order is charged once, with the real binary: the seller's payment hook
//! runs once per order although `smpl buy --wait`, the buyer node's re-sends and a
//! second `smpl buy` of the same pack all reach the seller while the hook runs;
//! and a seller killed with `kill -9` while its hook runs does not run it again
//! after a restart, but leaves the order to `smpl sales approve`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::*;

/// How long the payment hook takes: longer than the buyer's first re-send.
const HOOK_SECS: u64 = 5;

/// `smpl licenses --json` (with `--issued` for the seller's side); none is exit 1.
fn licenses(home: &Path, issued: bool) -> Vec<String> {
    let args: &[&str] = if issued { &["licenses", "--issued"] } else { &["licenses"] };
    let (code, lines, stderr) = smpl_json(home, args);
    assert!(code == 0 || (code == 1 && lines.is_empty()), "smpl {args:?}: {stderr}");
    lines.iter().map(|l| l["license_id"].as_str().unwrap().to_string()).collect()
}

/// How often the hook started.
fn runs(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |text| text.lines().count())
}

/// Waits for a background `smpl` to exit (killing it after `limit`) and parses its
/// one JSON line.
fn outcome(mut child: Child, limit: Duration) -> serde_json::Value {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("smpl did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Output { stdout, status, .. } = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&stdout);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_else(|| panic!("no output, {status}"));
    serde_json::from_str(line).unwrap()
}

/// A buyer B, a seller A whose payment hook notes each run in a file, takes
/// [`HOOK_SECS`] and approves, and a paid pack of A's that B has seen.
struct Market {
    dir: tempfile::TempDir,
    a_home: PathBuf,
    b: TestNode,
    a: Option<TestNode>,
    pack: String,
    runs: PathBuf,
}

impl Market {
    fn new() -> Market {
        let dir = tempfile::tempdir().unwrap();
        let (a_home, b_home) = (dir.path().join("a"), dir.path().join("b"));
        let runs = dir.path().join("runs");
        let hook = dir.path().join("hook.sh");
        std::fs::write(
            &hook,
            format!("cat >/dev/null\necho run >> '{}'\nsleep {HOOK_SECS}\necho approve\n", runs.display()),
        )
        .unwrap();
        let b = TestNode::start(&b_home);
        let mut market = Market { dir, a_home, b, a: None, pack: String::new(), runs };
        market.start_seller();
        let folder = market.dir.path().join("pack");
        write_sound(&folder.join("Dusty_Kick.wav"), 0.3, 60.0, true);
        let out = json_ok(
            &market.a_home,
            &["publish", folder.to_str().unwrap(), "--title", "Dusty Kick", "--price", "4.99"],
        );
        market.pack = out.last().unwrap()["pack_id"].as_str().unwrap().to_string();
        wait_until("B sees the listing", Duration::from_secs(30), || {
            // No match is exit 1.
            !smpl_json(&market.b.home, &["search", "dusty", "--packs"]).1.is_empty()
        });
        market
    }

    /// Starts (or restarts) A, joined to B, and waits until B sees it.
    fn start_seller(&mut self) {
        let b_addr = self.b.p2p_addr();
        let policy = format!("hook:sh '{}'", self.dir.path().join("hook.sh").display());
        let a = TestNode::start_with(
            &self.a_home,
            &["--seller-policy", &policy, "--hook-timeout", "60", "--bootstrap", &b_addr],
        );
        let a_id = json_ok(&self.a_home, &["id"])[0]["node_id"].as_str().unwrap().to_string();
        wait_until("B sees A", Duration::from_secs(30), || {
            json_ok(&self.b.home, &["peers"]).iter().any(|p| p["node_id"] == a_id.as_str())
        });
        self.a = Some(a);
    }

    fn buy(&self, wait_secs: u64) -> Child {
        smpl_spawn(&self.b.home, &["buy", &self.pack, "--wait", &wait_secs.to_string()])
    }
}

#[test]
fn the_hook_runs_once_however_often_and_however_many_orders_reach_the_seller() {
    let market = Market::new();
    // Two `smpl buy` at once: two orders; each `--wait` loop asks every 0.5 s and the
    // buyer's node re-sends both after 2 s, all while the first hook run lasts 5 s.
    let first = market.buy(20);
    let second = market.buy(20);
    let (first, second) = (outcome(first, Duration::from_secs(40)), outcome(second, Duration::from_secs(40)));
    assert_eq!(
        (&first["status"], &second["status"]),
        (&"issued".into(), &"issued".into()),
        "{first} {second}"
    );
    assert_eq!(first["license_id"], second["license_id"], "one license for both orders");
    // Give late copies time to arrive: none may start the hook again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs(&market.runs), 1, "the payment hook ran more than once");
    let issued = licenses(&market.a_home, true);
    let held = licenses(&market.b.home, false);
    assert_eq!(issued.len(), 1, "the seller issued {issued:?}");
    assert_eq!(held, issued, "the buyer holds {held:?}");
    assert_eq!(held[0], first["license_id"].as_str().unwrap());
    let sales = json_ok(&market.a_home, &["sales"]);
    assert_eq!(sales.len(), 1, "only the order that was decided is kept: {sales:?}");
    assert_eq!(sales[0]["status"], "issued");
    // The copies waited for the decision without taking a hook slot: none was
    // told "busy", and none was refused.
    let status = &json_ok(&market.a_home, &["status"])[0];
    assert_eq!(status["listings"], 1, "{status}");
    assert_eq!(status["dropped"]["orders_busy"], 0, "{status}");
    assert_eq!(status["dropped"]["orders_refused"], 0, "{status}");
    assert!(json_ok(&market.a_home, &["sales", "--refused"]).is_empty());
}

#[test]
fn a_seller_killed_while_the_hook_runs_leaves_the_order_to_its_decision() {
    let mut market = Market::new();
    let buy = market.buy(90);
    wait_until("the hook starts", Duration::from_secs(30), || runs(&market.runs) == 1);
    market.a.take().unwrap().kill9();
    market.start_seller();

    // The order waits for the seller, saying why; the hook is not run again while
    // the buyer keeps sending it, nor for a second order of the same pack.
    let pending = json_ok(&market.a_home, &["sales", "--pending"]);
    assert_eq!(pending.len(), 1, "{pending:?}");
    let reason = pending[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stopped while the payment hook ran"), "{reason}");
    let order = pending[0]["order_id"].as_str().unwrap().to_string();
    let again = json_ok(&market.b.home, &["buy", &market.pack]);
    assert_eq!(again[0]["status"], "pending", "{again:?}");
    std::thread::sleep(Duration::from_secs(HOOK_SECS + 2));
    assert_eq!(runs(&market.runs), 1, "the payment hook ran again after the restart");
    assert!(licenses(&market.a_home, true).is_empty());
    assert!(licenses(&market.b.home, false).is_empty());
    assert_eq!(json_ok(&market.a_home, &["sales", "--pending"]).len(), 1);

    // The seller checks the payment and approves: one license, and it reaches the buyer.
    let approved = json_ok(&market.a_home, &["sales", "approve", &order]);
    assert_eq!(approved[0]["status"], "issued", "{approved:?}");
    wait_until("the license reaches the buyer", Duration::from_secs(60), || {
        !licenses(&market.b.home, false).is_empty()
    });
    let bought = outcome(buy, Duration::from_secs(120));
    assert_eq!(bought["status"], "issued", "{bought}");
    std::thread::sleep(Duration::from_secs(3));
    let issued = licenses(&market.a_home, true);
    assert_eq!(issued.len(), 1, "the seller issued {issued:?}");
    assert_eq!(licenses(&market.b.home, false), issued);
    assert_eq!(issued[0], approved[0]["license_id"].as_str().unwrap());
    assert_eq!(runs(&market.runs), 1);
}
