//! Input as producers write it, with the real binary: tempo filters as a single
//! value, with a dash, open-ended or reversed; prices with a decimal comma; and a
//! clear usage error (exit 2) for an amount no pack costs or a currency that is not
//! one; counts in words ("1 match").

mod common;

use common::*;

#[test]
fn tempo_filters_and_prices_are_read_the_ways_producers_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _node = TestNode::start(&home);
    let pack_dir = dir.path().join("pack");
    make_mixed_pack(&pack_dir);
    let published =
        json_ok(&home, &["publish", pack_dir.to_str().unwrap(), "--title", "Input Kit", "--price", "4,99"]);
    let pack = published.last().unwrap()["pack_id"].as_str().unwrap().to_string();
    let shown = json_ok(&home, &["show", &pack]);
    assert_eq!(shown[0]["price"]["amount_minor"], 499, "{shown:?}");
    assert_eq!(shown[0]["price"]["currency"], "USD");

    // The loop is labelled 124 BPM.
    let loops = |bpm: &str| {
        let (code, hits, stderr) = smpl_json(&home, &["search", "--kind", "loop", "--bpm", bpm]);
        assert!(code == 0 || code == 1, "--bpm {bpm}: exit {code}: {stderr}");
        hits.iter().filter(|h| h["sample"].as_str().is_some_and(|s| s.contains("124bpm"))).count()
    };
    for bpm in ["124", "125", "120..128", "120-128", "128..120", "120..", "..130"] {
        assert_eq!(loops(bpm), 1, "--bpm {bpm} finds the 124 BPM loop");
    }
    for bpm in ["127", "125..", "..120", "130-140"] {
        assert_eq!(loops(bpm), 0, "--bpm {bpm} leaves out the 124 BPM loop");
    }
    // One hit reads "1 match".
    let text = smpl(&home, &["search", "groove", "--kind", "loop"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.lines().any(|l| l == "1 match"), "{stdout}");

    // A pack search lists packs with their author, sample count and size, without
    // the columns of a sample.
    let text = smpl(&home, &["search", "--packs"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    assert!(header.contains("AUTHOR") && header.contains("SAMPLES") && header.contains("SIZE"), "{stdout}");
    assert!(!header.contains("KIND") && !header.contains("BPM"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "1 pack"), "{stdout}");

    let (code, _, stderr) = smpl_json(&home, &["search", "--bpm", "fast"]);
    assert_eq!(code, 2, "{stderr}");

    // Amounts no pack costs and currencies that are not one are usage errors.
    for args in
        [["--price", "99999999999", "--currency", "USD"], ["--price", "4.99", "--currency", "bitcoin"]]
    {
        let mut full = vec!["publish", pack_dir.to_str().unwrap(), "--title", "Input Kit Two"];
        full.extend_from_slice(&args);
        let (code, _, stderr) = smpl_json(&home, &full);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("--price") || stderr.contains("--currency"), "{stderr}");
    }
}

#[test]
fn a_node_started_without_init_says_how_to_name_the_producer_and_init_sets_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let library = dir.path().join("My Library");
    let out = smpl(&home, &["init", "--name", "Ada", "--library", library.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains("My Library") && config.contains("Ada"), "{config}");

    // A node on a fresh home creates the identity and says how to set a name.
    let fresh = dir.path().join("fresh");
    let mut node = std::process::Command::new(&*BIN)
        .arg("--home")
        .arg(&fresh)
        .args(["node", "--api", "127.0.0.1:0", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .env_remove("SMPL_HOME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = node.stderr.take().unwrap();
    let first = std::io::BufRead::lines(std::io::BufReader::new(stderr)).next();
    let _ = node.kill();
    let _ = node.wait();
    let first = first.expect("the node printed nothing").unwrap();
    assert!(first.contains("smpl init --name"), "{first}");
}

#[test]
fn every_argument_of_every_command_has_help_text() {
    let commands: &[&[&str]] = &[
        &["init"],
        &["node"],
        &["id"],
        &["publish"],
        &["search"],
        &["show"],
        &["fetch"],
        &["retract"],
        &["audition"],
        &["similar"],
        &["recommend"],
        &["share"],
        &["peers"],
        &["check"],
        &["buy"],
        &["sales"],
        &["sales", "approve"],
        &["sales", "reject"],
        &["licenses"],
        &["license", "export"],
        &["license", "verify"],
        &["purchases"],
    ];
    let home = tempfile::tempdir().unwrap();
    let mut bare = Vec::new();
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = smpl(home.path(), &args);
        let help = String::from_utf8_lossy(&out.stdout);
        // An option or argument line with nothing after its name but a default.
        for line in help.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let named = words.first().is_some_and(|w| w.starts_with("--") || w.starts_with('<'));
            let said =
                words.iter().skip(1).any(|w| !w.starts_with('<') && !w.starts_with('[') && !w.ends_with(']'));
            if named && line.starts_with("  ") && !said {
                bare.push(format!("smpl {}: {}", command.join(" "), line.trim()));
            }
        }
    }
    assert!(bare.is_empty(), "arguments without help text:\n{}", bare.join("\n"));
}
