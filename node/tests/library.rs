//! The library folder names authors by display name and key: two producers who
//! use the same name and the same title, fetched by a third node on 127.0.0.1
//! (mDNS off), get a folder each and neither overwrites the other.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_authors_with_one_name_and_title_get_separate_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fetcher = start(root, "fetcher", &[]).await;
    let hub = addr(&fetcher).await;
    let first = start_named(root, "alice-1", "alice", std::slice::from_ref(&hub)).await;
    let second = start_named(root, "alice-2", "alice", std::slice::from_ref(&hub)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (dir_1, dir_2) = (root.join("pack-1"), root.join("pack-2"));
    make_pack(&dir_1);
    make_pack_with(&dir_2, [(0.45, 48.0), (0.35, 70.0), (0.25, 240.0)]);
    let pack_1 = publish(&first, &dir_1, "Line Drums").await;
    let pack_2 = publish(&second, &dir_2, "Line Drums").await;
    assert_ne!(pack_1, pack_2);
    wait_for(&fetcher, "line drums", pack_1, false, Duration::from_secs(10)).await;
    wait_for(&fetcher, "line drums", pack_2, false, Duration::from_secs(10)).await;

    let library = root.join("library");
    let fetched_1 = fetch(&fetcher, pack_1, &library).await;
    let fetched_2 = fetch(&fetcher, pack_2, &library).await;
    let library = std::path::absolute(&library).unwrap();
    let short = |node: &smpl_node::Node| node.node_id().to_hex()[..8].to_string();
    assert_eq!(fetched_1, library.join(format!("alice ({})", short(&first))).join("Line Drums"));
    assert_eq!(fetched_2, library.join(format!("alice ({})", short(&second))).join("Line Drums"));
    assert_same_files(&dir_1, &fetched_1);
    assert_same_files(&dir_2, &fetched_2);
    assert_ne!(
        std::fs::read(fetched_1.join("Line_Snare.wav")).unwrap(),
        std::fs::read(fetched_2.join("Line_Snare.wav")).unwrap()
    );

    // Fetching again reuses each pack's folder and still leaves the other alone.
    assert_eq!(fetch(&fetcher, pack_2, &library).await, fetched_2);
    assert_eq!(fetch(&fetcher, pack_1, &library).await, fetched_1);
    assert_same_files(&dir_1, &fetched_1);
    assert_same_files(&dir_2, &fetched_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_2_of_a_held_pack_downloads_only_the_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start(root, "a", &[]).await;
    let b = start(root, "b", std::slice::from_ref(&addr(&a).await)).await;
    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish(&a, &pack_dir, "Line Update").await;
    wait_for(&b, "line update", pack, false, Duration::from_secs(10)).await;
    let library = root.join("library");
    let first = fetch_outcome(&b, pack, &library).await;
    assert!(first.downloaded >= first.bytes, "{first:?}");

    // Version 2 changes one kick; the other files are the same bytes.
    write_wav(&pack_dir.join("Kicks/Line_Kick_01.wav"), 0.5, 52.0);
    let changed = std::fs::metadata(pack_dir.join("Kicks/Line_Kick_01.wav")).unwrap().len();
    assert_eq!(publish(&a, &pack_dir, "Line Update").await, pack);
    let limit = std::time::Instant::now() + Duration::from_secs(10);
    while b.store().manifest(&pack).unwrap().unwrap().0.seq < 2 {
        assert!(std::time::Instant::now() < limit, "version 2 did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = fetch_outcome(&b, pack, &library).await;
    assert_eq!(second.path, first.path, "the same folder");
    // The changed file and the collection's two small blobs; nothing else.
    assert!(
        second.downloaded >= changed && second.downloaded < changed + 4096,
        "{second:?}, changed {changed}"
    );
    assert_same_files(&pack_dir, &second.path);
    println!("version 2: {} of {} bytes downloaded", second.downloaded, second.bytes);
}
