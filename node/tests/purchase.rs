//! Buying between real nodes in one process on 127.0.0.1 (mDNS off): signed orders
//! over `/smpl/purchase/1`, the seller's policies, license tokens, and the gate
//! that serves paid audio only to license holders, from the seller and from buyers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_bytes::ByteBuf;
use smpl_node::net::wire::{TradeRequest, TradeResponse};
use smpl_node::trade::{Expect, LicenseError, check_token};
use smpl_node::{Node, OrderStatus, SellerPolicy};
use smpl_protocol::{
    Identity, LicenseId, LicenseTerms, LicenseToken, NodeId, PackId, PurchaseRequest, Signed,
};

async fn buy(node: &Node, pack: PackId, payment_ref: &str) -> smpl_node::BuyOutcome {
    let payment_ref = Some(payment_ref.to_string());
    tokio::time::timeout(STEP, node.buy(&pack, payment_ref, Duration::ZERO))
        .await
        .expect("buy timed out")
        .unwrap()
}

/// Asks `from`'s iroh endpoint for the whole pack directly, bypassing the node's
/// own license check, as a modified client would.
async fn raw_download(node: &Node, pack: PackId, from: NodeId) -> Result<(), String> {
    let (manifest, _) = node.store().manifest(&pack).unwrap().unwrap();
    let transfer = node.transfer().unwrap();
    let providers = [from];
    let download = transfer.download(manifest.content, &providers, None);
    let result = match tokio::time::timeout(STEP, download).await {
        Ok(result) => result.map(|_| ()).map_err(|e| e.to_string()),
        Err(_) => Err("download timed out".into()),
    };
    if let Err(e) = &result {
        assert!(e.contains("refused the request"), "failed for another reason than the gate: {e}");
    }
    result
}

/// Asserts that `node` holds not one byte of any sample of `pack`.
async fn holds_no_audio(node: &Node, pack: PackId) {
    let (manifest, _) = node.store().manifest(&pack).unwrap().unwrap();
    let samples: Vec<_> = manifest.samples.iter().map(|s| s.hash).collect();
    holds_none(node, &samples).await;
}

async fn present(node: &Node, to: NodeId, token: Vec<u8>) -> TradeResponse {
    trade(node, to, TradeRequest::Present(ByteBuf::from(token))).await
}

async fn license_of(node: &Node, pack: PackId) -> Vec<u8> {
    let (manifest, _) = node.store().manifest(&pack).unwrap().unwrap();
    let licenses = node.licenses(false).await.unwrap();
    let view = licenses.iter().find(|l| l.pack_id == pack && l.content == manifest.content).unwrap();
    let text = std::fs::read(&view.file).unwrap();
    smpl_protocol::certificate::parse(&text).unwrap().token
}

/// The signed purchase request of `node`'s first order for `pack`.
async fn buy_request_of(node: &Node, pack: PackId) -> Vec<u8> {
    node.purchases().await.unwrap().into_iter().find(|o| o.pack_id == pack).unwrap().request
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, limit: Duration, check: F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_packs_reach_license_holders_only_also_from_other_buyers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start_with(root, "a", &[], policy(SellerPolicy::Auto)).await;
    let a_addr = addr(&a).await;
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    let b_addr = addr(&b).await;
    let c = start(root, "c", &[a_addr.clone(), b_addr.clone()]).await;
    let d = start(root, "d", &[a_addr.clone(), b_addr.clone()]).await;
    let (a_id, b_id) = (a.node_id(), b.node_id());

    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish_priced(&a, &pack_dir, "Line Paid", usd(499)).await;
    let other_dir = root.join("other");
    write_wav(&other_dir.join("Other_Hat.wav"), 0.2, 3000.0);
    let other = publish_priced(&a, &other_dir, "Other Paid", usd(199)).await;
    for node in [&b, &c, &d] {
        wait_for(node, "line", pack, false, Duration::from_secs(10)).await;
        wait_for(node, "other", other, false, Duration::from_secs(10)).await;
    }

    // C has no license: its node refuses to fetch, and A's endpoint serves nothing.
    let err = try_fetch(&c, pack, &root.join("c-out")).await.unwrap_err();
    assert!(err.contains("license required") && err.contains("smpl buy"), "{err}");
    let err = raw_download(&c, pack, a_id).await.unwrap_err();
    assert!(!err.is_empty());
    holds_no_audio(&c, pack).await;

    // Previews stay free: C auditions a sample of the paid pack, once over the
    // network, then from its store; asking for the sample itself is refused.
    let preview = c.preview(&pack, "kick_01").await.unwrap();
    assert!(preview.fetched && preview.bytes > 1000 && preview.bytes < 100_000, "{preview:?}");
    assert!(std::fs::read(&preview.path).unwrap().starts_with(b"OggS"));
    println!("preview of a paid sample: {} bytes fetched in {:.1} ms", preview.bytes, preview.millis);
    let again = c.preview(&pack, "Kicks/Line_Kick_01.wav").await.unwrap();
    assert!(!again.fetched && again.preview == preview.preview);
    // A blob over the size a reader accepts is not taken whole.
    let (manifest, _) = c.store().manifest(&pack).unwrap().unwrap();
    let other_preview = manifest.samples[1].preview.unwrap();
    let over = c.transfer().unwrap().fetch_blob(other_preview, &[a_id], 1024).await.unwrap_err();
    assert!(over.to_string().contains("over 1024 bytes"), "{over}");
    assert!(!c.blobs().is_complete(&other_preview).await.unwrap());
    let sample = manifest.samples[0].hash;
    let refused = c.transfer().unwrap().fetch_blob(sample, &[a_id], 1 << 20).await.unwrap_err();
    println!("a paid sample blob asked for directly: {refused}");
    holds_no_audio(&c, pack).await;

    // Bad orders get a clear answer and the seller keeps serving.
    let network = c.network().unwrap();
    let garbage = TradeRequest::Buy(ByteBuf::from(b"SMPL\x01\x03not an envelope".to_vec()));
    let answer = network.trade(a_id, garbage).await.unwrap();
    assert!(
        matches!(&answer, TradeResponse::Refused(r) if r.contains("invalid purchase request")),
        "{answer:?}"
    );
    let (manifest, _) = c.store().manifest(&pack).unwrap().unwrap();
    let request = PurchaseRequest {
        buyer_name: None,
        pack_id: pack,
        seq: manifest.seq,
        buyer: b_id,
        seller: a_id,
        price: usd(499),
        payment_ref: None,
        nonce: 1,
        created_at: 1,
    };
    let on_behalf = request.sign(&Identity::from_secret_bytes([4; 32]));
    assert!(on_behalf.is_err(), "signing for another buyer must fail");
    let mut cheap = request.clone();
    cheap.buyer = c.node_id();
    cheap.price = usd(1);
    let cheap = cheap.sign(&identity_of(root, "c")).unwrap();
    let answer = network.trade(a_id, TradeRequest::Buy(ByteBuf::from(cheap.into_bytes()))).await.unwrap();
    assert!(
        matches!(&answer, TradeResponse::Rejected { reason, .. } if reason.contains("costs 4.99 USD")),
        "{answer:?}"
    );
    // The seller keeps no sale of it, but logs it, and counts it.
    assert!(a.sales(false).await.unwrap().is_empty());
    let refused = a.refused_orders().await.unwrap();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].buyer == c.node_id() && refused[0].reason.contains("costs 4.99 USD"), "{refused:?}");
    assert_eq!(a.status().await.unwrap().dropped.orders_refused, 1);
    let huge = TradeRequest::Present(ByteBuf::from(vec![0u8; 200 * 1024]));
    assert!(network.trade(a_id, huge).await.is_err(), "an oversized message is not answered");

    // B buys under `auto`, gets a license, fetches byte-identical files.
    let bought = buy(&b, pack, "card-1").await;
    let forwarded = buy_request_of(&b, pack).await;
    let answer = network.trade(a_id, TradeRequest::Buy(ByteBuf::from(forwarded))).await.unwrap();
    assert!(
        matches!(&answer, TradeResponse::Refused(r) if r.contains("came from")),
        "a replayed order: {answer:?}"
    );
    assert_eq!(bought.status, OrderStatus::Issued, "{bought:?}");
    let fetched = fetch(&b, pack, &root.join("b-out")).await;
    assert_same_files(&pack_dir, &fetched);
    let again = buy(&b, pack, "card-2").await;
    assert_eq!((again.status, again.license_id), (OrderStatus::Issued, bought.license_id), "no second sale");

    // A copied token is useless from another key: A and B both refuse C.
    let b_token = license_of(&b, pack).await;
    for provider in [a_id, b_id] {
        let answer = present(&c, provider, b_token.clone()).await;
        assert!(matches!(&answer, TradeResponse::Refused(r) if r.contains("issued to")), "{answer:?}");
        assert!(raw_download(&c, pack, provider).await.is_err());
    }
    // A changed byte anywhere in the token is refused.
    for i in [10, 40, 110, b_token.len() - 1] {
        let mut bad = b_token.clone();
        bad[i] ^= 1;
        assert!(matches!(present(&c, a_id, bad).await, TradeResponse::Refused(_)));
    }
    // C's own license for another pack opens only that pack.
    assert_eq!(buy(&c, other, "card-3").await.status, OrderStatus::Issued);
    let c_other = license_of(&c, other).await;
    assert!(matches!(present(&c, a_id, c_other).await, TradeResponse::Accepted));
    assert!(raw_download(&c, pack, a_id).await.is_err(), "a license for another pack");
    // A token C signs itself for A's content is well formed, but not by the author.
    let (manifest, _) = c.store().manifest(&pack).unwrap().unwrap();
    let forger = Identity::from_secret_bytes([9; 32]);
    let forged = LicenseToken {
        license_id: LicenseId([7; 16]),
        pack_id: PackId::derive(&forger.node_id(), &manifest.slug),
        slug: manifest.slug.clone(),
        seq: manifest.seq,
        content: manifest.content,
        seller: forger.node_id(),
        buyer: c.node_id(),
        price: None,
        terms: LicenseTerms::Named("royalty-free".into()),
        issued_at: 1,
    };
    let forged = forged.sign(&forger).unwrap().into_bytes();
    let by_author = Expect { pack: Some(pack), ..Expect::default() };
    assert!(matches!(check_token(&forged, &by_author), Err(LicenseError::WrongPack { .. })));
    present(&c, a_id, forged.clone()).await;
    assert!(raw_download(&c, pack, a_id).await.is_err(), "a license not signed by the author");
    holds_no_audio(&c, pack).await;

    // D buys too; with A gone, B serves D and still refuses C.
    assert_eq!(buy(&d, pack, "card-4").await.status, OrderStatus::Issued);
    a.shutdown().await;
    let fetched = fetch(&d, pack, &root.join("d-out")).await;
    assert_same_files(&pack_dir, &fetched);
    let err = try_fetch(&c, pack, &root.join("c-out")).await.unwrap_err();
    assert!(err.contains("license required"), "{err}");
    assert!(raw_download(&c, pack, b_id).await.is_err());
    holds_no_audio(&c, pack).await;
    for node in [b, c, d] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_orders_wait_for_the_seller_and_reach_a_buyer_that_was_away() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = start_with(root, "a", &[], policy(SellerPolicy::Manual)).await;
    let a_addr = addr(&a).await;
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish_priced(&a, &pack_dir, "Line Manual", usd(999)).await;
    let free_dir = root.join("free");
    write_wav(&free_dir.join("Free_Rim.wav"), 0.2, 2000.0);
    let free = publish(&a, &free_dir, "Rim Free").await;
    let second_dir = root.join("second");
    write_wav(&second_dir.join("Second_Tom.wav"), 0.3, 120.0);
    let second = publish_priced(&a, &second_dir, "Second Manual", usd(100)).await;
    wait_for(&b, "line", pack, false, Duration::from_secs(10)).await;
    wait_for(&b, "second", second, false, Duration::from_secs(10)).await;
    wait_for(&b, "rim", free, false, Duration::from_secs(10)).await;

    // Free packs are issued at once, whatever the policy.
    assert_eq!(buy(&b, free, "").await.status, OrderStatus::Issued);

    let order = buy(&b, pack, "bank-transfer-77").await;
    assert_eq!(order.status, OrderStatus::Pending, "{order:?}");
    let pending = a.sales(true).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].buyer, pending[0].order_id.as_str()), (b.node_id(), order.order_id.as_str()));
    assert!(try_fetch(&b, pack, &root.join("b-out")).await.unwrap_err().contains("license required"));

    // The order survives the seller's restart.
    a.shutdown().await;
    let a = start_with(root, "a", &[], policy(SellerPolicy::Manual)).await;
    let a_addr = addr(&a).await;
    assert_eq!(a.sales(true).await.unwrap(), pending);

    // B goes away; A approves; B comes back and collects its license by itself.
    b.shutdown().await;
    let approved = a.approve(&order.order_id[..6]).await.unwrap();
    assert_eq!(approved.status, OrderStatus::Issued);
    let b = start(root, "b", std::slice::from_ref(&a_addr)).await;
    let took = wait_until("license delivered", Duration::from_secs(20), async || {
        b.licenses(false).await.unwrap().iter().any(|l| l.pack_id == pack)
    })
    .await;
    println!("license reached the returning buyer {took:?} after its restart");
    let fetched = fetch(&b, pack, &root.join("b-out")).await;
    assert_same_files(&pack_dir, &fetched);

    // A rejected order tells the buyer why.
    let order = buy(&b, second, "IOU").await;
    assert_eq!(order.status, OrderStatus::Pending);
    a.reject(&order.order_id, Some("no payment received for IOU".into())).await.unwrap();
    wait_until("rejection delivered", Duration::from_secs(20), async || {
        let purchases = b.purchases().await.unwrap();
        let o = purchases.iter().find(|o| o.order_id == order.order_id).unwrap();
        o.status == OrderStatus::Rejected && o.reason.as_deref() == Some("no payment received for IOU")
    })
    .await;
    assert!(a.approve(&order.order_id).await.unwrap_err().to_string().contains("not pending"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_hook_decides_and_a_broken_hook_rejects_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let hook = root.join("hook.sh");
    std::fs::write(
        &hook,
        r#"order=$(cat)
case "$order" in
  *'"payment_ref":"PAID-'*) echo approve ;;
  *'"payment_ref":"HANG'*) sleep 60 ;;
  *'"payment_ref":"CRASH'*) echo "payment backend unreachable" >&2; exit 3 ;;
  *) echo "reject no payment found for this reference" ;;
esac
"#,
    )
    .unwrap();
    let a = start_with(root, "a", &[], policy(SellerPolicy::Hook(format!("sh {}", hook.display())))).await;
    let b = start(root, "b", &[addr(&a).await]).await;
    let pack_dir = root.join("pack");
    make_pack(&pack_dir);
    let pack = publish_priced(&a, &pack_dir, "Line Hooked", usd(500)).await;
    wait_for(&b, "line", pack, false, Duration::from_secs(10)).await;

    let rejected = buy(&b, pack, "IOU-1").await;
    assert_eq!(rejected.status, OrderStatus::Rejected);
    assert_eq!(rejected.reason.as_deref(), Some("no payment found for this reference"));

    let started = Instant::now();
    let hung = buy(&b, pack, "HANG-1").await;
    assert_eq!(hung.status, OrderStatus::Rejected);
    assert!(hung.reason.as_deref().unwrap().contains("did not answer within 2 s"), "{hung:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    let crashed = buy(&b, pack, "CRASH-1").await;
    assert_eq!(crashed.status, OrderStatus::Rejected);
    assert!(crashed.reason.as_deref().unwrap().contains("payment backend unreachable"), "{crashed:?}");

    let paid = buy(&b, pack, "PAID-1234").await;
    assert_eq!(paid.status, OrderStatus::Issued, "{paid:?}");
    let sales = a.sales(false).await.unwrap();
    let states: Vec<_> = sales.iter().map(|o| (o.payment_ref.clone().unwrap(), o.status)).collect();
    assert_eq!(states.len(), 4, "{states:?}");
    assert!(states.contains(&("PAID-1234".into(), OrderStatus::Issued)));
    a.shutdown().await;
    b.shutdown().await;
}
