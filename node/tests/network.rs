//! Several real nodes in one process on 127.0.0.1 (mDNS off): listings travel by
//! gossip and sync, packs by verified iroh-blobs transfers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use smpl_node::Home;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pack_travels_along_a_line_and_survives_its_author() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let b = start(root, "b", &[addr(&a).await]).await;
    let c = start(root, "c", &[addr(&b).await]).await;
    // Let the line form (hello + first sync) before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish(&a, &pack_dir, "Line Kicks").await;
    let took = wait_for(&c, "line", pack, false, Duration::from_secs(2)).await;
    println!("A → C over gossip: {took:?}");

    let fetched = fetch(&c, pack, &root.join("c-out")).await;
    assert_same_files(&pack_dir, &fetched);
    // B fetches too, so two nodes besides A can serve the pack.
    fetch(&b, pack, &root.join("b-out")).await;

    a.shutdown().await;
    let d = start(root, "d", &[addr(&c).await]).await;
    wait_for(&d, "line", pack, false, Duration::from_secs(10)).await;
    let fetched = fetch(&d, pack, &root.join("d-out")).await;
    assert_same_files(&pack_dir, &fetched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_and_retractions_reach_a_node_that_was_offline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let a_addr = addr(&a).await;
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let one = root.join("one");
    make_pack(&one);
    let keep = publish(&a, &one, "Keep Me").await;
    let drop_me = publish(&a, &one, "Drop Me").await;
    wait_for(&b, "keep", keep, false, Duration::from_secs(5)).await;
    wait_for(&b, "drop", drop_me, false, Duration::from_secs(5)).await;

    // C saw version 1, then goes offline.
    let c = start(root, "c", std::slice::from_ref(&a_addr)).await;
    wait_for(&c, "keep", keep, false, Duration::from_secs(10)).await;
    let c_home = Home::new(root.join("c"));
    c.shutdown().await;

    // A updates one pack and retracts the other; B sees both over gossip.
    write_wav(&one.join("Extra_Clap.wav"), 0.3, 900.0);
    let again = publish(&a, &one, "Keep Me").await;
    assert_eq!(again, keep);
    a.retract(&drop_me).await.unwrap();
    wait_for(&b, "clap", keep, false, Duration::from_secs(5)).await;
    wait_for(&b, "drop", drop_me, true, Duration::from_secs(5)).await;

    // C comes back, connected to B only, and catches up by sync.
    drop(c_home);
    let c = start(root, "c", &[addr(&b).await]).await;
    wait_for(&c, "clap", keep, false, Duration::from_secs(10)).await;
    wait_for(&c, "drop", drop_me, true, Duration::from_secs(10)).await;
    let (manifest, _) = c.store().manifest(&keep).unwrap().unwrap();
    assert_eq!(manifest.seq, 2);
    assert!(c.store().manifest(&drop_me).unwrap().is_none());
}

/// A minimal valid manifest (one sample whose blob nobody needs to hold).
fn listing(author: &smpl_protocol::Identity, n: usize) -> smpl_protocol::Manifest {
    use smpl_protocol::{BlobHash, Manifest, SampleEntry};
    use smpl_testkit::manifest::{manifest, sample};
    let slug = format!("late-pack-{n}");
    let hash = BlobHash(*blake3::hash(slug.as_bytes()).as_bytes());
    let sample = SampleEntry { hash, ..sample(&format!("Pad_{n}.wav")) };
    Manifest {
        title: format!("Late Pack {n}"),
        tags: vec!["late".into()],
        content: hash,
        ..manifest(author.node_id(), &slug, 1, vec![sample])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_joiner_catches_up_on_1000_packs_by_sync() {
    use smpl_protocol::Signed;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let author = smpl_protocol::Identity::from_secret_bytes([42; 32]);
    for n in 0..1000 {
        let manifest = listing(&author, n);
        let envelope = manifest.sign(&author).unwrap();
        a.store().accept_manifest(&manifest, &envelope, false).unwrap();
    }
    a.store().flush().unwrap();

    let started = Instant::now();
    let b = start(root, "b", &[addr(&a).await]).await;
    loop {
        if b.store().pack_seqs().unwrap().len() == 1000 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "late joiner did not catch up within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = started.elapsed();
    b.flush_index().await;
    let (hits, _) = (b.search(query("late")).await.unwrap().total, ());
    assert_eq!(hits, 1000, "every synced pack is searchable");
    println!("1,000 packs by sync in {caught_up:?} (node start included)");

    // A second sync with nothing new exchanges a few bytes only.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = b.network().unwrap().stats();
    let before = (stats.reconcile_bytes.load(Ordering::Relaxed), stats.fetched.load(Ordering::Relaxed));
    b.network().unwrap().sync_all().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bytes = stats.reconcile_bytes.load(Ordering::Relaxed) - before.0;
    let fetched = stats.fetched.load(Ordering::Relaxed) - before.1;
    println!("second sync: {bytes} bytes of reconciliation, {fetched} envelopes");
    assert!(bytes > 0, "the second sync ran");
    assert!(bytes <= 300, "second sync exchanged {bytes} bytes");
    assert_eq!(fetched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_rejoins_its_remembered_peers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let b = start(root, "b", &[addr(&a).await]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.shutdown().await;

    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish(&a, &pack_dir, "While You Were Out").await;
    // No --bootstrap this time: B dials the peers it remembers.
    let b = start(root, "b", &[]).await;
    wait_for(&b, "while", pack, false, Duration::from_secs(10)).await;
    assert!(!b.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_closes_its_endpoint_while_others_still_hold_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "a", &[]).await;
    // What listings queued for their checks under a flood hold at shutdown.
    let held = node.transfer().expect("networked").clone();
    assert!(!held.is_closed());
    tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.expect("the node stops");
    assert!(held.is_closed(), "the endpoint is closed although the transfer is still held");
}

/// A node just started has met no peer yet, and a provider lookup then would
/// find nobody (`smpl fetch` right after `smpl node`): it waits for the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_lookup_before_any_peer_is_known_waits_for_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a", &[]).await;
    let pack_dir = dir.path().join("pack");
    make_pack(&pack_dir);
    let pack = publish(&a, &pack_dir, "Looked Up Early").await;
    let b = start(dir.path(), "b", &[]).await;
    let network = b.network().expect("networked").clone();
    let lookup = tokio::spawn(async move { network.find_providers(pack).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!lookup.is_finished(), "a lookup with no peer known ended at once");
    b.network().unwrap().dial(addr(&a).await).await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(20), lookup)
        .await
        .expect("the lookup ended")
        .unwrap()
        .unwrap();
    assert!(found.contains(&a.node_id()), "the author was not found: {found:?}");
}

/// The index's commits are not synced while the node runs (a stall of the disk
/// would hold up a publish); its stop syncs them, so a stop of the machine after
/// it has nothing to rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_leaves_its_index_synced() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path(), "a", &[]).await;
    let pack_dir = dir.path().join("pack");
    make_pack(&pack_dir);
    publish(&node, &pack_dir, "Synced At Stop").await;
    let marker = Home::new(dir.path().join("a")).index_dir().join("unsynced");
    assert!(marker.exists(), "no marker while the index has unsynced commits");
    tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.expect("the node stops");
    assert!(!marker.exists(), "the stop left the index unsynced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swarm_runs_a_step_below_searches_and_listing_checks_at_the_lowest_priority() {
    let dir = tempfile::tempdir().unwrap();
    let _node = start(dir.path(), "a", &[]).await;
    // Linux gives each thread its own nice value and policy: fields 19 and 41 of
    // its stat line.
    let field = |task: &std::path::Path, n: usize| -> Option<i32> {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(n - 3)?.parse().ok()
    };
    let nice_of = |task: &std::path::Path| field(task, 19);
    let named = |task: &std::path::Path, name: &str| {
        std::fs::read_to_string(task.join("comm")).is_ok_and(|comm| comm.trim() == name)
    };
    let list_tasks = || -> Vec<_> {
        std::fs::read_dir("/proc/self/task").unwrap().filter_map(|t| Some(t.ok()?.path())).collect()
    };
    let tasks = list_tasks();
    let swarms: Vec<i32> =
        tasks.iter().filter(|t| named(t, "smpl-swarm")).filter_map(|t| nice_of(t)).collect();
    let workers: Vec<i32> =
        tasks.iter().filter(|t| named(t, "tokio-rt-worker")).filter_map(|t| nice_of(t)).collect();
    assert!(!swarms.is_empty(), "no smpl-swarm thread");
    let searches = workers.iter().copied().min().expect("tokio's workers, which answer the API");
    assert!(swarms.iter().all(|&nice| nice > searches), "swarm {swarms:?}, API {workers:?}");
    let checks = || -> Vec<i32> {
        list_tasks()
            .iter()
            .filter(|t| named(t, "smpl-gossip-0") || named(t, "smpl-ingest-0"))
            .filter_map(|t| field(t, 41))
            .collect()
    };
    // Other tests' nodes in this process have such threads too, and one of them
    // may be starting: its thread is named before it lowers its own priority.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = checks();
    while !seen.iter().all(|&policy| policy == libc::SCHED_IDLE) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = checks();
    }
    assert!(seen.len() >= 2, "the gossip and sync checks' threads: {seen:?}");
    assert!(seen.iter().all(|&policy| policy == libc::SCHED_IDLE), "{seen:?}");
}
