//! End-to-end tests of the `smpl` binary: real nodes, real files, real index.

mod common;

use common::*;

#[test]
fn init_keeps_identity_and_prints_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let (code, first, _) = smpl_json(dir.path(), &["init", "--name", "Tester"]);
    assert_eq!(code, 0);
    let (_, second, _) = smpl_json(dir.path(), &["init"]);
    let id = first[0]["node_id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert_eq!(second[0]["node_id"], first[0]["node_id"]);
}

#[test]
fn commands_without_a_node_say_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = smpl(dir.path(), &["search", "kick"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no node is running") && err.contains("smpl --home"), "{err}");
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(smpl(dir.path(), &["publish", "."]).status.code(), Some(2), "missing --title");
    assert_eq!(smpl(dir.path(), &["search", "--bpm", "fast"]).status.code(), Some(2));
    assert_eq!(smpl(dir.path(), &["search", "--key", "H minor"]).status.code(), Some(2));
    assert_eq!(smpl(dir.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(smpl(dir.path(), &["similar", "no-slash"]).status.code(), Some(2));
    assert_eq!(smpl(dir.path(), &["publish", ".", "--title", "x", "--bpm", "1000"]).status.code(), Some(2));
    assert_eq!(
        smpl(dir.path(), &["publish", ".", "--title", "x", "--key", "H minor"]).status.code(),
        Some(2)
    );
    assert_eq!(
        smpl(dir.path(), &["search", "--key-match", "compatible"]).status.code(),
        Some(2),
        "needs --key"
    );
    assert_eq!(
        smpl(dir.path(), &["publish", ".", "--title", "x", "--price", "cheap"]).status.code(),
        Some(2)
    );
}

#[test]
fn publish_search_show_retract() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let pack = dir.path().join("pack");
    make_mixed_pack(&pack);
    let _node = TestNode::start(&home);

    let (code, out, err) = smpl_json(
        &home,
        &[
            "publish",
            pack.to_str().unwrap(),
            "--title",
            "Test Drums",
            "--genre",
            "Techno",
            "--tags",
            "dark,analog",
            "--price",
            "4.99",
            "--currency",
            "usd",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let pack_id = out[0]["pack_id"].as_str().unwrap().to_string();
    assert_eq!(out[0]["seq"], 1);
    assert_eq!(out[0]["samples"], 4, "two kicks, a snare and a loop; {out:?}");
    let skipped: Vec<&str> =
        out[0]["skipped"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(skipped.contains(&"README.txt") && skipped.contains(&"Broken.wav"), "{skipped:?}");

    // Search finds the kicks, and only the kicks.
    let (code, hits, _) = smpl_json(&home, &["search", "kick"]);
    assert_eq!(code, 0);
    let mut names: Vec<&str> = hits.iter().map(|h| h["sample"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Kicks/Deep_Kick_01.wav", "Kicks/Punchy_Kick_02.wav"]);
    for field in
        ["pack_id", "pack_title", "author", "sample", "kind", "bpm", "key", "duration_ms", "price", "score"]
    {
        assert!(hits[0].get(field).is_some(), "search --json lacks {field}: {}", hits[0]);
    }
    assert_eq!(hits[0]["price"], 4.99);

    // Filters on analysed and stated values.
    let (_, loops, _) = smpl_json(&home, &["search", "--kind", "loop"]);
    assert_eq!(loops.len(), 1);
    assert_eq!(loops[0]["sample"], "Loops/Groove_Loop_124bpm_Am.wav");
    assert_eq!(loops[0]["bpm"], 124.0);
    assert_eq!(loops[0]["key"], "Am");
    let (_, in_range, _) = smpl_json(&home, &["search", "--bpm", "120..128", "--key", "A minor"]);
    assert_eq!(in_range.len(), 1);
    let (code, _, _) = smpl_json(&home, &["search", "kick", "--max-price", "2"]);
    assert_eq!(code, 1, "a $4.99 pack is over a $2 ceiling");
    let (_, packs, _) = smpl_json(&home, &["search", "--packs", "--genre", "techno", "--tag", "dark"]);
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0]["pack_id"], pack_id.as_str());

    // Show by full id and by prefix.
    let (code, shown, _) = smpl_json(&home, &["show", &pack_id[..8]]);
    assert_eq!(code, 0);
    let m = &shown[0];
    assert_eq!(m["title"], "Test Drums");
    assert_eq!(m["samples"].as_array().unwrap().len(), 4);
    let kick =
        m["samples"].as_array().unwrap().iter().find(|s| s["name"] == "Kicks/Deep_Kick_01.wav").unwrap();
    assert_eq!(kick["frames"], 17_640);
    assert_eq!(kick["sample_rate"], 44_100);
    assert_eq!(kick["channels"], 1);
    assert_eq!(kick["bit_depth"], 16);
    assert_eq!(kick["kind"], "one-shot");
    let readable = smpl(&home, &["show", &pack_id]);
    assert!(String::from_utf8_lossy(&readable.stdout).contains("Deep_Kick_01.wav"));

    // A rebuild from the stored manifests gives the same results.
    let (_, before, _) = smpl_json(&home, &["search", "--limit", "100"]);
    let (code, rebuilt, _) = smpl_json(&home, &["index", "rebuild"]);
    assert_eq!((code, rebuilt[0]["packs"].as_u64()), (0, Some(1)));
    let (_, after, _) = smpl_json(&home, &["search", "--limit", "100"]);
    let samples = |hits: &[serde_json::Value]| {
        let mut s: Vec<String> = hits.iter().map(|h| h["sample"].to_string()).collect();
        s.sort();
        s
    };
    assert_eq!(samples(&before), samples(&after));
    assert_eq!(after.len(), 4);

    // An update makes version 2 and leaves no stale documents.
    std::fs::remove_file(pack.join("Kicks/Punchy_Kick_02.wav")).unwrap();
    let (code, out, _) =
        smpl_json(&home, &["publish", pack.to_str().unwrap(), "--update", &pack_id, "--free", "--yes"]);
    assert_eq!(code, 0);
    assert_eq!(out[0]["seq"], 2);
    let (_, hits, _) = smpl_json(&home, &["search", "kick"]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["price"], 0.0);

    // Retract: gone from search and show.
    let (code, out, _) = smpl_json(&home, &["retract", &pack_id]);
    assert_eq!(code, 0);
    assert_eq!(out[0]["pack_id"], pack_id.as_str());
    let (code, hits, _) = smpl_json(&home, &["search", "kick"]);
    assert_eq!((code, hits.len()), (1, 0));
    assert_eq!(smpl(&home, &["show", &pack_id]).status.code(), Some(1));
    let (code, report, _) = smpl_json(&home, &["check"]);
    assert_eq!(code, 0, "{report:?}");
}

#[test]
fn publish_with_no_audio_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("notes.txt"), "hello").unwrap();
    std::fs::write(pack.join("fake.wav"), "not a wav at all").unwrap();
    let _node = TestNode::start(&home);
    let out = smpl(&home, &["publish", pack.to_str().unwrap(), "--title", "Nothing"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no audio") && err.contains("fake.wav"), "{err}");
    let (_, report, _) = smpl_json(&home, &["check"]);
    assert_eq!(report[0]["packs"], 0);
    let out = smpl(&home, &["publish", dir.path().join("missing").to_str().unwrap(), "--title", "X"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn two_homes_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let (pack_a, pack_b) = (dir.path().join("pa"), dir.path().join("pb"));
    write_sound(&pack_a.join("Alpha_Kick.wav"), 0.3, 60.0, true);
    write_sound(&pack_b.join("Beta_Snare.wav"), 0.3, 200.0, true);
    let node_a = TestNode::start(&home_a);
    let node_b = TestNode::start(&home_b);
    // A second node on the same home is refused while the first runs.
    let again =
        smpl(&home_a, &["node", "--api", "127.0.0.1:0", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    assert_eq!(smpl(&home_a, &["publish", pack_a.to_str().unwrap(), "--title", "A"]).status.code(), Some(0));
    assert_eq!(smpl(&home_b, &["publish", pack_b.to_str().unwrap(), "--title", "B"]).status.code(), Some(0));
    let (_, ida, _) = smpl_json(&home_a, &["id"]);
    let (_, idb, _) = smpl_json(&home_b, &["id"]);
    assert_ne!(ida[0]["node_id"], idb[0]["node_id"]);
    assert_ne!(ida[0]["api"], idb[0]["api"]);
    let (_, hits_a, _) = smpl_json(&home_a, &["search"]);
    let (_, hits_b, _) = smpl_json(&home_b, &["search"]);
    assert_eq!(hits_a.len(), 1);
    assert_eq!(hits_a[0]["sample"], "Alpha_Kick.wav");
    assert_eq!(hits_b.len(), 1);
    assert_eq!(hits_b[0]["sample"], "Beta_Snare.wav");

    // A clean stop removes node.json; a restart finds everything again.
    node_a.stop();
    assert!(!home_a.join("node.json").exists());
    let _node_a = TestNode::start(&home_a);
    let (_, hits_a, _) = smpl_json(&home_a, &["search", "alpha"]);
    assert_eq!(hits_a.len(), 1);
    drop(node_b);
}

#[test]
fn the_api_wants_its_token() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _node = TestNode::start(&home);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("node.json")).unwrap()).unwrap();
    let api = info["api"].as_str().unwrap().trim_start_matches("http://").to_string();
    let ask = |auth: &str| {
        let mut stream = std::net::TcpStream::connect(&api).unwrap();
        write!(stream, "GET /v1/id HTTP/1.1\r\nHost: {api}\r\n{auth}Connection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(ask("").starts_with("HTTP/1.1 401"));
    assert!(ask("Authorization: Bearer wrong\r\n").starts_with("HTTP/1.1 401"));
    let token = std::fs::read_to_string(home.join("api.token")).unwrap();
    assert!(ask(&format!("Authorization: Bearer {}\r\n", token.trim())).starts_with("HTTP/1.1 200"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("api.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
