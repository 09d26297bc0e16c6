//! The rest of a producer's day with the real binary, two homes on 127.0.0.1
//! (mDNS off): genres written any way, covers and payment instructions, a pack
//! list with sizes, ambiguous names, `check` on a buyer, a library file edited in
//! place and restored, an order to a seller that is away, and a retraction.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use common::*;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00,
    0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
    0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn stderr_of(home: &Path, args: &[&str]) -> (bool, String) {
    let out = smpl(home, args);
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn publish(home: &Path, dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["publish", dir.to_str().unwrap()];
    full.extend_from_slice(args);
    json_ok(home, &full)[0]["pack_id"].as_str().unwrap().to_string()
}

#[test]
fn a_producers_day_around_buying() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (a_home, b_home) = (root.join("seller"), root.join("buyer"));
    json_ok(&a_home, &["init", "--name", "Ada", "--library", root.join("a-library").to_str().unwrap()]);
    json_ok(&b_home, &["init", "--name", "Bo", "--library", root.join("library").to_str().unwrap()]);
    let b = TestNode::start(&b_home);
    let a = TestNode::start_with(&a_home, &["--seller-policy", "auto", "--bootstrap", &b.p2p_addr()]);

    // A pack with a cover, two kicks and payment instructions, in a genre written oddly.
    let kit = root.join("Boom Kit");
    write_sound(&kit.join("Kick_Soft.wav"), 0.8, 50.0, true);
    write_sound(&kit.join("Kick_Hard.wav"), 0.8, 62.0, true);
    write_sound(&kit.join("Clap.wav"), 0.4, 1200.0, true);
    std::fs::write(kit.join("cover.png"), PNG).unwrap();
    let pay = ["--payment", "PayPal to ada@example.org", "--payment-url", "https://example.org/pay"];
    let mut args = vec!["--title", "Boom Kit", "--genre", "Hip-Hop", "--price", "2.00"];
    args.extend_from_slice(&pay);
    let pack = publish(&a_home, &kit, &args);
    let other_dir = root.join("Other");
    write_sound(&other_dir.join("Tone.wav"), 1.0, 440.0, false);
    let other = publish(&a_home, &other_dir, &["--title", "Other Kit", "--price", "1.00"]);
    wait_until("the buyer sees both packs", Duration::from_secs(30), || {
        // No match yet is exit 1.
        smpl_json(&b_home, &["search", "--packs"]).1.len() == 2
    });

    // Genres match however they are written.
    for genre in ["hiphop", "hip hop", "HIP-HOP"] {
        let hits = json_ok(&b_home, &["search", "--packs", "--genre", genre]);
        assert_eq!(hits.len(), 1, "--genre {genre}: {hits:?}");
    }
    // The pack list shows author, sample count and size; show gives cover and payment.
    let (ok, list) = stderr_of(&b_home, &["search", "--packs", "--genre", "hiphop"]);
    assert!(ok && list.contains("Ada (") && list.contains("3 samples") && list.contains("KB"), "{list}");
    println!("{list}");
    let shown = json_ok(&b_home, &["show", &pack]);
    assert!(shown[0]["cover"].is_string(), "{shown:?}");
    assert_eq!(shown[0]["samples"].as_array().unwrap().len(), 3, "the cover is not a sample");
    assert_eq!(shown[0]["payment"]["url"], "https://example.org/pay");
    // An ambiguous sample name lists the candidates.
    let (ok, text) = stderr_of(&b_home, &["audition", &pack, "kick"]);
    assert!(!ok && text.contains("Kick_Hard.wav") && text.contains("Kick_Soft.wav"), "{text}");

    // The buyer buys and fetches one pack; check tells held from only listed.
    assert_eq!(json_ok(&b_home, &["buy", &pack])[0]["status"], "issued");
    let fetched = json_ok(&b_home, &["fetch", &pack]);
    let folder = std::path::PathBuf::from(fetched[0]["path"].as_str().unwrap());
    let report = json_ok(&b_home, &["check"]);
    assert_eq!(report[0]["held"].as_array().unwrap().len(), 1, "{report:?}");
    assert_eq!(report[0]["held"][0]["title"], "Boom Kit");
    assert_eq!(report[0]["packs"], 2);
    assert!(report[0]["incomplete"].as_array().unwrap().is_empty(), "seen is not incomplete: {report:?}");

    // A library file made writable and edited in place: check finds it, and fetch
    // does not export the damaged bytes.
    let clap = folder.join("Clap.wav");
    let mut perms = std::fs::metadata(&clap).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&clap, perms).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(&clap).unwrap();
    file.seek(SeekFrom::Start(100)).unwrap();
    file.write_all(b"edited in place").unwrap();
    drop(file);
    let (ok, text) = stderr_of(&b_home, &["check"]);
    assert!(text.contains("Clap.wav"), "{text}");
    let (_, report, _) = smpl_json(&b_home, &["check"]);
    let shared = !report[0]["damaged"].as_array().unwrap().is_empty();
    println!("check after an edit in place (the library file shares the store's: {shared}):\n{text}");
    if shared {
        // The library file was a hard link to the store: the stored copy is damaged.
        assert!(!ok, "{text}");
    }
    // fetch exports no damaged bytes: it fetches the file again from the seller
    // where the stored copy is damaged, and writes the original back.
    json_ok(&b_home, &["fetch", &pack]);
    assert_eq!(std::fs::read(&clap).unwrap(), std::fs::read(kit.join("Clap.wav")).unwrap());
    let report = json_ok(&b_home, &["check"]);
    assert!(report[0]["damaged"].as_array().unwrap().is_empty(), "{report:?}");
    assert!(report[0]["edited"].as_array().unwrap().is_empty(), "{report:?}");

    // An order to a seller that is away stays pending and says so.
    a.stop();
    let order = json_ok(&b_home, &["buy", &other]);
    assert_eq!(order[0]["status"], "pending");
    assert!(order[0]["reason"].as_str().unwrap().contains("cannot be reached"), "{order:?}");
    let purchases = json_ok(&b_home, &["purchases", "--pending"]);
    assert!(purchases[0]["unreachable_since"].is_u64(), "{purchases:?}");

    // A retraction: the buyer's licence keeps its title, show says what happened.
    let a = TestNode::start_with(&a_home, &["--seller-policy", "auto", "--bootstrap", &b.p2p_addr()]);
    json_ok(&a_home, &["retract", &pack]);
    wait_until("the retraction reaches the buyer", Duration::from_secs(30), || {
        !smpl(&b_home, &["show", &pack]).status.success()
    });
    let (_, text) = stderr_of(&b_home, &["show", &pack]);
    assert!(text.contains("retracted by its author on"), "{text}");
    let licenses = json_ok(&b_home, &["licenses"]);
    assert!(licenses.iter().any(|l| l["title"] == "Boom Kit"), "{licenses:?}");
    drop(a);
}
