//! Publishing real recordings end to end: the Hydrogen kit "GMRockKit" (Debian's
//! `hydrogen-data`, installed by scripts/setup.sh) through a real node, checked
//! against sox/ffmpeg reference measurements recorded by
//! scripts/hydrogen-reference.sh. Fails, never skips, when the kit is missing.

mod common;

use std::collections::HashMap;

use common::*;

const KIT: &str = "/usr/share/hydrogen/data/drumkits/GMRockKit";
const FIXTURE: &str = include_str!("../../audio/tests/fixtures/hydrogen_GMRockKit.tsv");

#[test]
fn published_kit_manifest_matches_reference_tools() {
    assert!(
        std::path::Path::new(KIT).is_dir(),
        "{KIT} missing: run scripts/setup.sh (apt-get install hydrogen-data)"
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let _node = TestNode::start(&home);
    let (code, out, err) = smpl_json(&home, &["publish", KIT, "--title", "GM Rock Kit", "--genre", "rock"]);
    assert_eq!(code, 0, "{err}");
    let pack_id = out[0]["pack_id"].as_str().unwrap().to_string();
    let (_, shown, _) = smpl_json(&home, &["show", &pack_id]);
    let samples: HashMap<&str, &serde_json::Value> =
        shown[0]["samples"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap(), s)).collect();

    let mut checked = 0;
    let (mut worst_ms, mut worst_peak, mut worst_lu) = (0f64, 0f64, 0f64);
    for line in FIXTURE.lines().filter(|l| !l.starts_with('#') && !l.starts_with("file\t") && !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let s = samples.get(f[0]).unwrap_or_else(|| panic!("{} missing from the manifest", f[0]));
        let frames: f64 = f[1].parse().unwrap();
        let rate: f64 = f[2].parse().unwrap();
        assert_eq!(s["sample_rate"].as_f64().unwrap(), rate, "{}", f[0]);
        assert_eq!(s["channels"].to_string(), f[3], "{}", f[0]);
        assert_eq!(s["bit_depth"].to_string(), f[4], "{}", f[0]);
        let ms = (s["frames"].as_f64().unwrap() - frames).abs() * 1000.0 / rate;
        let peak = (s["peak_dbfs"].as_f64().unwrap() - f[5].parse::<f64>().unwrap()).abs();
        let reference_lufs: f64 = f[6].parse().unwrap();
        let lu = match s["loudness_lufs"].as_f64() {
            Some(l) => (l - reference_lufs).abs(),
            None => {
                assert_eq!(reference_lufs, -70.0, "{}: no loudness but ffmpeg measured one", f[0]);
                0.0
            }
        };
        assert!(ms <= 1.0, "{}: duration off by {ms} ms", f[0]);
        assert!(peak <= 0.1, "{}: peak off by {peak} dB", f[0]);
        assert!(lu <= 0.5, "{}: loudness off by {lu} LU", f[0]);
        worst_ms = worst_ms.max(ms);
        worst_peak = worst_peak.max(peak);
        worst_lu = worst_lu.max(lu);
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} reference lines");
    println!(
        "{checked} files: worst duration {worst_ms:.3} ms, peak {worst_peak:.3} dB, loudness {worst_lu:.3} LU"
    );

    let (_, kicks, _) = smpl_json(&home, &["search", "kick", "--limit", "100"]);
    assert!(!kicks.is_empty());
    assert!(kicks.iter().all(|h| h["sample"].as_str().unwrap().to_lowercase().contains("kick")), "{kicks:?}");
}
