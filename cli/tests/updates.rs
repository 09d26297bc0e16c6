//! A producer's day with the real binary, two homes on 127.0.0.1 (mDNS off): a
//! seller publishes a paid pack, a buyer buys and fetches it, and the seller's
//! updates reach the buyer without a second payment, except a paid upgrade.
//! Publishing is explicit (a title names one pack; `--update` makes versions).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Relative path → bytes of every file under `dir`, hidden files included.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Every `.smpl-part` file under `dir`.
fn partial_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".smpl-part") {
                found.push(path);
            }
        }
    }
    found
}

fn seq_seen(home: &Path, pack: &str) -> u64 {
    let (code, lines, _) = smpl_json(home, &["show", pack]);
    if code != 0 { 0 } else { lines[0]["seq"].as_u64().unwrap_or(0) }
}

fn fetch(home: &Path, pack: &str) -> serde_json::Value {
    json_ok(home, &["fetch", pack]).pop().unwrap()
}

#[test]
fn a_buyer_gets_updates_without_paying_again_but_not_a_paid_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a_home, b_home) = (root.join("seller"), root.join("buyer"));
    let library = root.join("library");
    json_ok(&a_home, &["init", "--name", "Ada", "--library", root.join("a-library").to_str().unwrap()]);
    json_ok(&b_home, &["init", "--name", "Bo", "--library", library.to_str().unwrap()]);
    let b = TestNode::start(&b_home);
    let a_log = root.join("seller.log");
    let a = TestNode::start_logged(&a_home, &["--bootstrap", &b.p2p_addr()], &a_log);

    let kit = root.join("Kit");
    write_sound(&kit.join("Kick.wav"), 0.6, 55.0, true);
    write_sound(&kit.join("Snare.wav"), 0.5, 190.0, true);
    write_sound(&kit.join("Hats/Hat.wav"), 0.3, 900.0, true);
    let kit_arg = kit.to_str().unwrap();
    let published = json_ok(
        &a_home,
        &["publish", kit_arg, "--title", "Update Drums", "--price", "3,00", "--currency", "eur"],
    );
    let pack = published[0]["pack_id"].as_str().unwrap().to_string();

    // A title names one pack: publishing it again is refused, and says how to update.
    let again = smpl(&a_home, &["publish", kit_arg, "--title", "update drums"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("--update"), "{stderr}");
    // The same folder and fields make no version.
    let same = json_ok(&a_home, &["publish", kit_arg, "--update", &pack]);
    assert_eq!((same[0]["unchanged"].as_bool(), same[0]["seq"].as_u64()), (Some(true), Some(1)));
    // A price change needs --yes.
    let cheaper = smpl(&a_home, &["publish", kit_arg, "--update", &pack, "--free"]);
    let stderr = String::from_utf8_lossy(&cheaper.stderr);
    assert!(!cheaper.status.success() && stderr.contains("--yes") && stderr.contains("free"), "{stderr}");
    assert_eq!(json_ok(&a_home, &["show", &pack])[0]["price"]["amount_minor"], 300);

    // The buyer buys (the seller approves by hand) and fetches.
    wait_until("the buyer sees the pack", Duration::from_secs(30), || seq_seen(&b_home, &pack) == 1);
    let order = json_ok(&b_home, &["buy", &pack, "--payment-ref", "SEPA-1"]);
    assert_eq!(order[0]["status"], "pending");
    let order_id = order[0]["order_id"].as_str().unwrap().to_string();
    // Buying again sends the same order, not a second one.
    let again = json_ok(&b_home, &["buy", &pack]);
    assert_eq!(
        (again[0]["order_id"].as_str(), again[0]["resent"].as_bool()),
        (Some(order_id.as_str()), Some(true))
    );
    let sales = json_ok(&a_home, &["sales", "--pending"]);
    assert_eq!(sales.len(), 1, "{sales:?}");
    assert_eq!(sales[0]["buyer_name"], "Bo");
    // The seller's node says so in its log, one line per order, with the buyer's name.
    let log = std::fs::read_to_string(&a_log).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("new order")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("Bo (") && lines[0].contains(&order_id), "{}", lines[0]);
    json_ok(&a_home, &["sales", "approve", &order_id]);
    wait_until("the licence reaches the buyer", Duration::from_secs(30), || {
        json_ok(&b_home, &["purchases"]).iter().any(|o| o["status"] == "issued")
    });
    let first = fetch(&b_home, &pack);
    let folder = PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(tree(&folder), tree(&kit));
    // Fetching again writes nothing half-done into the library.
    fetch(&b_home, &pack);
    assert_eq!(partial_files(&library), Vec::<PathBuf>::new());
    assert_eq!(tree(&folder), tree(&kit));

    // Version 2 changes the kick and drops the hat: the buyer fetches it without
    // paying, downloads only the new kick, and the folder is version 2.
    write_sound(&kit.join("Kick.wav"), 0.7, 48.0, true);
    std::fs::remove_dir_all(kit.join("Hats")).unwrap();
    let kick = std::fs::metadata(kit.join("Kick.wav")).unwrap().len();
    let v2 = json_ok(&a_home, &["publish", kit_arg, "--update", &pack]);
    assert_eq!(v2[0]["seq"], 2, "{v2:?}");
    wait_until("the buyer sees version 2", Duration::from_secs(30), || seq_seen(&b_home, &pack) == 2);
    let second = fetch(&b_home, &pack);
    assert_eq!(second["path"], first["path"]);
    let downloaded = second["downloaded"].as_u64().unwrap();
    assert!(downloaded >= kick && downloaded < kick + 4096, "{second}, the new kick is {kick} bytes");
    assert_eq!(tree(&folder), tree(&kit), "the library folder is version 2");
    let licenses = json_ok(&b_home, &["licenses"]);
    assert!(licenses.iter().any(|l| l["seq"] == 2), "an update licence was issued: {licenses:?}");
    let cert = root.join("v2.license");
    json_ok(&b_home, &["license", "export", &pack, "-o", cert.to_str().unwrap()]);
    let verified =
        json_ok(&b_home, &["license", "verify", cert.to_str().unwrap(), "--files", folder.to_str().unwrap()]);
    assert_eq!(verified[0]["valid"], true, "{verified:?}");
    // The folder as a DAW leaves it, a single file, and a project that copied a subset.
    let project = root.join("Project");
    std::fs::create_dir_all(project.join("Samples")).unwrap();
    std::fs::copy(folder.join("Kick.wav"), project.join("Samples/Kick.wav")).unwrap();
    std::fs::write(project.join("Samples/Kick.wav.asd"), b"ableton analysis").unwrap();
    std::fs::write(project.join(".DS_Store"), b"finder").unwrap();
    for target in [project.clone(), project.join("Samples/Kick.wav"), folder.join("Snare.wav")] {
        let (code, verified, stderr) = smpl_json(
            &b_home,
            &["license", "verify", cert.to_str().unwrap(), "--files", target.to_str().unwrap()],
        );
        assert_eq!(
            (code, &verified[0]["valid"]),
            (0, &serde_json::json!(true)),
            "{target:?}: {verified:?} {stderr}"
        );
        assert_eq!(verified[0]["files_found"].as_array().map(Vec::len), Some(1), "{verified:?}");
    }

    // Version 3 is a paid upgrade: fetching it asks for a purchase first.
    write_sound(&kit.join("Snare.wav"), 0.5, 210.0, true);
    let v3 = json_ok(&a_home, &["publish", kit_arg, "--update", &pack, "--paid-upgrade"]);
    assert_eq!(v3[0]["seq"], 3);
    wait_until("the buyer sees version 3", Duration::from_secs(30), || seq_seen(&b_home, &pack) == 3);
    let refused = smpl(&b_home, &["fetch", &pack]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("paid upgrade"), "{stderr}");
    let upgrade = json_ok(&b_home, &["buy", &pack]);
    assert_eq!(upgrade[0]["status"], "pending", "a paid upgrade waits for the seller: {upgrade:?}");
    assert_ne!(upgrade[0]["order_id"].as_str(), Some(order_id.as_str()));

    // A day of publishing, selling and updating, and a stop, logs each version
    // published and no error.
    a.stop();
    let log = std::fs::read_to_string(&a_log).unwrap();
    for version in 1..=3 {
        let line = format!("published \"Update Drums\", version {version}, ");
        assert_eq!(log.lines().filter(|l| l.contains(" INFO ") && l.contains(&line)).count(), 1, "{log}");
    }
    assert!(log.trim_end().ends_with("node stopped"), "{log}");
    assert!(!log.lines().any(|line| line.contains(" ERROR ")), "{log}");
}
