//! Paid audio stays paid, tried as an attacker would, with real nodes on 127.0.0.1
//! (mDNS off). Mallory runs a stock node with her own key and holds none of the
//! paid bytes; Dave has no licence. Neither gets any paid byte, through any route,
//! before or after the seller updates or retracts the pack and the buyer restarts.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use serde_bytes::ByteBuf;
use smpl_node::net::wire::{TradeRequest, TradeResponse};
use smpl_node::{Node, SellerPolicy};
use smpl_protocol::{BlobHash, Identity, LicenseId, LicenseToken, Manifest, NodeId, PackId, Signed};

/// Mallory's forgery: the paid pack's public manifest re-signed under her key as
/// a free pack of her own (same content and sample hashes).
fn forge_free_copy(paid: &Manifest, mallory: &Identity) -> (Manifest, Vec<u8>) {
    let mut forged = paid.clone();
    forged.author = mallory.node_id();
    forged.author_name = paid.author_name.clone();
    forged.slug = "free-copy".into();
    forged.pack_id = PackId::derive(&forged.author, &forged.slug);
    forged.seq = 1;
    forged.price = None;
    let envelope = forged.sign(mallory).unwrap();
    (forged, envelope.as_bytes().to_vec())
}

/// Every route a non-buyer has to the bytes of `samples` on `provider`: the
/// node's own fetch of a listing that names them, a raw iroh-blobs download of
/// the collection, and each blob asked for on its own. All must fail.
async fn every_route_refused(
    dave: &Node,
    provider: NodeId,
    listing: Option<PackId>,
    content: BlobHash,
    samples: &[BlobHash],
    out: &Path,
) {
    if let Some(pack) = listing {
        let err = try_fetch(dave, pack, out).await.unwrap_err();
        println!("dave's fetch of the listing: {err}");
    }
    dave.network().unwrap().connect(provider).await.unwrap();
    let transfer = dave.transfer().unwrap();
    let download = tokio::time::timeout(STEP, transfer.download(content, &[provider], None)).await;
    assert!(!matches!(download, Ok(Ok(_))), "a raw download of the paid collection succeeded");
    for sample in samples {
        let blob = tokio::time::timeout(STEP, transfer.fetch_blob(*sample, &[provider], 64 << 20)).await;
        assert!(!matches!(blob, Ok(Ok(_))), "paid blob {sample} was served to a non-buyer");
    }
    holds_none(dave, samples).await;
}

async fn holds_all(node: &Node, hashes: &[BlobHash]) {
    for hash in hashes {
        assert!(node.blobs().is_complete(hash).await.unwrap(), "{hash} is no longer held whole");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_free_copy_leaks_no_paid_byte_before_or_after_updates_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start_with(root, "a", &[], policy(SellerPolicy::Auto)).await;
    let a_addr = addr(&a).await;
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    let b_addr = addr(&b).await;
    let m = start(root, "m", &[a_addr.clone(), b_addr.clone()]).await;
    let m_addr = addr(&m).await;
    let d = start(root, "d", &[a_addr.clone(), b_addr.clone(), m_addr.clone()]).await;
    let d_addr = addr(&d).await;
    let (a_id, b_id) = (a.node_id(), b.node_id());

    // A sells a pack; B buys and fetches it.
    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish_priced(&a, &pack_dir, "Line Paid", usd(499)).await;
    for node in [&b, &m, &d] {
        wait_for(node, "line", pack, false, Duration::from_secs(10)).await;
    }
    let bought =
        tokio::time::timeout(STEP, b.buy(&pack, None, Duration::from_secs(5))).await.unwrap().unwrap();
    assert_eq!(bought.status, smpl_node::OrderStatus::Issued);
    let b_lib = fetch(&b, pack, &root.join("b-lib")).await;
    assert_same_files(&pack_dir, &b_lib);
    let (paid, _) = a.store().manifest(&pack).unwrap().unwrap();
    let paid_samples: Vec<BlobHash> = paid.samples.iter().map(|s| s.hash).collect();

    // Mallory gossips a free copy under her own key.
    let mallory = identity_of(root, "m");
    let (forged, envelope) = forge_free_copy(&paid, &mallory);
    m.network().unwrap().publish(envelope.clone()).await.unwrap();
    let limit = Duration::from_secs(15);
    let spread = std::time::Instant::now();
    while b.store().manifest(&forged.pack_id).unwrap().is_none()
        || d.store().manifest(&forged.pack_id).unwrap().is_none()
        || a.store().manifest(&forged.pack_id).unwrap().is_none()
    {
        assert!(spread.elapsed() < limit, "the forged listing did not spread");
        m.network().unwrap().publish(envelope.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The buyer and the seller both "fetch" it: the content is here already, so
    // nothing is downloaded; neither becomes a provider of the free copy.
    fetch(&b, forged.pack_id, &root.join("b-forged")).await;
    fetch(&a, forged.pack_id, &root.join("a-forged")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let providers = d.network().unwrap().find_providers(forged.pack_id).await.unwrap_or_default();
    assert!(!providers.contains(&b_id) && !providers.contains(&a_id), "{providers:?}");

    // Mallory mints Dave a "licence" for her copy; the buyer does not hold that
    // content for her, so it grants nothing.
    let token = LicenseToken {
        license_id: LicenseId([9; 16]),
        pack_id: forged.pack_id,
        slug: forged.slug.clone(),
        seq: 1,
        content: forged.content,
        seller: mallory.node_id(),
        buyer: d.node_id(),
        price: None,
        terms: forged.license.clone(),
        issued_at: 1,
    };
    let minted = token.sign(&mallory).unwrap().as_bytes().to_vec();
    for provider in [b_id, a_id] {
        let answer = trade(&d, provider, TradeRequest::Present(ByteBuf::from(minted.clone()))).await;
        assert!(matches!(&answer, TradeResponse::Refused(r) if r.contains("holds no content")), "{answer:?}");
    }

    let out = root.join("d-out");
    every_route_refused(&d, b_id, Some(forged.pack_id), forged.content, &paid_samples, &out).await;
    every_route_refused(&d, a_id, None, forged.content, &paid_samples, &out).await;

    // The seller drops one file and changes another; the buyer restarts.
    std::fs::remove_file(pack_dir.join("Line_Snare.wav")).unwrap();
    write_wav(&pack_dir.join("Kicks/Line_Kick_01.wav"), 0.3, 70.0);
    let v2 = publish_priced(&a, &pack_dir, "Line Paid", usd(499)).await;
    assert_eq!(v2, pack);
    let b = {
        b.shutdown().await;
        start(root, "b", &[a_addr.clone(), d_addr.clone()]).await
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    every_route_refused(&d, b_id, Some(forged.pack_id), forged.content, &paid_samples, &out).await;
    holds_all(&b, &paid_samples).await;

    // The seller retracts; the buyer restarts again.
    a.retract(&pack).await.unwrap();
    let b = {
        b.shutdown().await;
        start(root, "b", &[a_addr.clone(), d_addr.clone()]).await
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    every_route_refused(&d, b_id, Some(forged.pack_id), forged.content, &paid_samples, &out).await;

    // The buyer keeps what it bought, whole, and its library files.
    holds_all(&b, &paid_samples).await;
    let original = root.join("original");
    make_pack(&original);
    assert_same_files(&original, &b_lib);
    for node in [a, b, m, d] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_licence_holder_is_served_by_another_buyer_and_a_re_export_needs_no_download() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start_with(root, "a", &[], policy(SellerPolicy::Auto)).await;
    let a_addr = addr(&a).await;
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    let b_addr = addr(&b).await;
    let c = start(root, "c", &[a_addr.clone(), b_addr.clone()]).await;
    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish_priced(&a, &pack_dir, "Line Paid", usd(250)).await;
    for node in [&b, &c] {
        wait_for(node, "line", pack, false, Duration::from_secs(10)).await;
        let bought =
            tokio::time::timeout(STEP, node.buy(&pack, None, Duration::from_secs(5))).await.unwrap().unwrap();
        assert_eq!(bought.status, smpl_node::OrderStatus::Issued);
    }
    fetch(&b, pack, &root.join("b-lib")).await;

    // Mallory claims to provide the pack (a DHT provider record) without holding it.
    let m = start(root, "m", &[a_addr.clone(), addr(&c).await]).await;
    m.network().unwrap().provide(pack).await.unwrap();

    // B restarts (its grants and provenance come back from disk), A goes away:
    // C, a licence holder, gets the pack from B alone.
    let b = {
        b.shutdown().await;
        start(root, "b", &[addr(&c).await, addr(&m).await]).await
    };
    a.shutdown().await;
    let limit = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let providers = c.network().unwrap().find_providers(pack).await.unwrap_or_default();
        if providers.contains(&m.node_id()) && providers.contains(&b.node_id()) {
            break;
        }
        assert!(std::time::Instant::now() < limit, "providers not found: {providers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c_lib = fetch(&c, pack, &root.join("c-lib")).await;
    assert_same_files(&pack_dir, &c_lib);
    // C showed its licence to B, which proved it holds the content, and never
    // to Mallory, who could not.
    assert!(b.gate_stats().granted.load(Ordering::Relaxed) >= 1);
    assert_eq!(m.gate_stats().presented.load(Ordering::Relaxed), 0, "the licence reached a fake provider");
    m.shutdown().await;

    // B deletes its library folder and exports again, from its store.
    std::fs::remove_dir_all(root.join("b-lib")).unwrap();
    let again = fetch(&b, pack, &root.join("b-lib")).await;
    assert_same_files(&pack_dir, &again);
    b.shutdown().await;
    c.shutdown().await;
}
