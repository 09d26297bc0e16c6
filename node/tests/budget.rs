//! The listing budget under a flood of valid listings from fresh keys: a peer that
//! holds thousands of signed listings by hundreds of throwaway authors syncs them
//! to a node with a small budget. The node keeps within it, keeps the packs of the
//! author it bought from, keeps its own, refuses authors over their share, does not
//! fetch evicted listings again, and still takes an honest new listing. Real nodes
//! on 127.0.0.1, mDNS off.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use smpl_node::Home;
use smpl_node::budget::{BudgetConfig, DECLINED_RECORD};
use smpl_node::{Node, TradeConfig};
use smpl_protocol::{Identity, Signed};
use smpl_testkit::manifest as kit;

const FLOOD_AUTHORS: u32 = 200;
const PACKS_EACH: u32 = 10;

async fn settle(node: &Node, what: &str, mut done: impl FnMut(&Node) -> bool) {
    let start = Instant::now();
    while !done(node) {
        let stats = node.network().unwrap().stats();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s ({:?} kept, {} refused, {} evicted, {} fetched)",
            node.budget().totals(),
            node.budget().stats.refused.load(Ordering::Relaxed),
            node.budget().stats.evicted.load(Ordering::Relaxed),
            stats.fetched.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_valid_listings_stays_within_the_budget_and_keeps_what_matters() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The flooder: 2,000 valid listings by 200 fresh keys, ready to sync.
    let flooder = start(root, "flooder", &[]).await;
    for a in 0..FLOOD_AUTHORS {
        let mut secret = [7u8; 32];
        secret[..4].copy_from_slice(&a.to_le_bytes());
        let author = Identity::from_secret_bytes(secret);
        for p in 0..PACKS_EACH {
            let manifest =
                kit::manifest(author.node_id(), &format!("spam-{p}"), 1, vec![kit::sample("x.wav")]);
            let envelope = manifest.sign(&author).unwrap();
            flooder.store().accept_manifest(&manifest, &envelope, false).unwrap();
        }
    }
    // A friend whose free pack the victim fetches, and the victim's own pack.
    let friend = start(root, "friend", &[]).await;
    let friend_dir = root.join("friend-pack");
    make_pack(&friend_dir);
    let friend_pack = publish(&friend, &friend_dir, "Friend Drums").await;

    let home = Home::new(root.join("victim"));
    home.init().unwrap();
    let mut options = options(home, &[addr(&friend).await], TradeConfig::default());
    options.budget = BudgetConfig {
        max_listings: 300,
        max_bytes: u64::MAX,
        packs_per_author: 50,
        bytes_per_author: u64::MAX,
        ..BudgetConfig::default()
    };
    let victim = Node::start(&options).await.unwrap();
    let own_dir = root.join("own-pack");
    make_pack_with(&own_dir, [(0.45, 48.0), (0.35, 70.0), (0.25, 240.0)]);
    let own = publish(&victim, &own_dir, "Own Drums").await;
    wait_for(&victim, "friend drums", friend_pack, false, Duration::from_secs(20)).await;
    fetch(&victim, friend_pack, &root.join("library")).await;

    // The flood arrives over sync.
    victim.network().unwrap().dial(addr(&flooder).await).await.unwrap();
    let offered = (FLOOD_AUTHORS * PACKS_EACH) as u64;
    settle(&victim, "the flood arrived", |node| {
        node.network().unwrap().stats().fetched.load(Ordering::Relaxed) >= offered
    })
    .await;
    // The last listings fetched may still be on their way through verification:
    // wait until nothing changes for two seconds.
    let mut last = None;
    settle(&victim, "the store settled", |node| {
        let now = (node.budget().totals(), node.store().pack_seqs().unwrap().len());
        let quiet = last == Some(now);
        last = Some(now);
        if !quiet {
            std::thread::sleep(Duration::from_secs(2));
        }
        quiet
    })
    .await;
    let (listings, _) = victim.budget().totals();
    let refused = victim.budget().stats.refused.load(Ordering::Relaxed);
    let evicted = victim.budget().stats.evicted.load(Ordering::Relaxed);
    println!(
        "flood: {listings} listings kept ({} in the store), {refused} refused over an author's share, {evicted} evicted",
        victim.store().pack_seqs().unwrap().len()
    );
    assert!(listings <= 300, "{listings} listings kept, over the budget of 300");
    assert!(evicted > 0, "the total budget evicted some");
    assert!(victim.store().manifest(&own).unwrap().is_some(), "its own pack stays");
    assert!(victim.store().manifest(&friend_pack).unwrap().is_some(), "the fetched pack stays");
    victim.flush_index().await;
    assert!(!victim.search(query("friend drums")).await.unwrap().hits.is_empty());

    // Evicted listings are not fetched again at the next reconciliation.
    let fetched = victim.network().unwrap().stats().fetched.load(Ordering::Relaxed);
    victim.network().unwrap().sync_all().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = victim.network().unwrap().stats().fetched.load(Ordering::Relaxed) - fetched;
    assert!(again < 50, "{again} listings fetched again after a full reconciliation");

    // An honest new listing from the friend still arrives at once.
    let second = root.join("friend-second");
    make_pack_with(&second, [(0.4, 52.0), (0.3, 90.0), (0.2, 300.0)]);
    let new_pack = publish(&friend, &second, "Friend Percussion").await;
    let took = wait_for(&victim, "friend percussion", new_pack, false, Duration::from_secs(10)).await;
    println!("an honest listing from a known author arrived in {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_author_past_its_share_is_refused_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let flooder = start(root, "flooder", &[]).await;
    let greedy = Identity::from_secret_bytes([9; 32]);
    for p in 0..20 {
        let manifest = kit::manifest(greedy.node_id(), &format!("greedy-{p}"), 1, vec![kit::sample("x.wav")]);
        let envelope = manifest.sign(&greedy).unwrap();
        flooder.store().accept_manifest(&manifest, &envelope, false).unwrap();
    }
    let home = Home::new(root.join("victim"));
    home.init().unwrap();
    let mut options = options(home, &[addr(&flooder).await], TradeConfig::default());
    options.budget = BudgetConfig { packs_per_author: 5, ..BudgetConfig::default() };
    let victim = Node::start(&options).await.unwrap();
    // Fetched is counted as the listings arrive, before they are taken in on
    // threads of their own: wait until each is kept or refused.
    settle(&victim, "the greedy author's listings were offered and taken in", |node| {
        let taken = node.budget().totals().0 as u64 + node.budget().stats.refused.load(Ordering::Relaxed);
        node.network().unwrap().stats().fetched.load(Ordering::Relaxed) >= 20 && taken >= 20
    })
    .await;
    let refused = victim.budget().stats.refused.load(Ordering::Relaxed);
    assert_eq!(victim.budget().totals().0, 5, "five listings of the one author are kept");
    assert_eq!(refused, 15, "the other fifteen were refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_author_updating_too_often_is_declined_and_not_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let flooder = start(root, "flooder", &[]).await;
    let churner = Identity::from_secret_bytes([10; 32]);
    let version = |seq: u64| {
        for p in 0..10 {
            let manifest =
                kit::manifest(churner.node_id(), &format!("churn-{p}"), seq, vec![kit::sample("x.wav")]);
            let envelope = manifest.sign(&churner).unwrap();
            flooder.store().accept_manifest(&manifest, &envelope, false).unwrap();
        }
    };
    version(1);
    let home = Home::new(root.join("victim"));
    home.init().unwrap();
    let mut options = options(home, &[addr(&flooder).await], TradeConfig::default());
    options.budget = BudgetConfig { updates_per_author_day: 4, ..BudgetConfig::default() };
    let victim = Node::start(&options).await.unwrap();
    settle(&victim, "the first versions arrived", |node| node.budget().totals().0 == 10).await;

    // Ten updates at once: four are taken, six declined.
    version(2);
    victim.network().unwrap().sync_all().await.unwrap();
    settle(&victim, "the updates were offered", |node| {
        node.budget().stats.refused.load(Ordering::Relaxed) >= 6
    })
    .await;
    let seqs = victim.store().pack_seqs().unwrap();
    let updated = seqs.iter().filter(|(_, seq)| *seq == 2).count();
    assert_eq!((seqs.len(), updated), (10, 4), "every pack kept, four of them updated: {seqs:?}");
    assert_eq!(victim.budget().stats.refused.load(Ordering::Relaxed), 6);
    assert_eq!(victim.status().await.unwrap().dropped.listings_refused, 6);

    // The declined versions count as held: a full reconciliation fetches nothing.
    let stats = || victim.network().unwrap().stats().fetched.load(Ordering::Relaxed);
    let fetched = stats();
    victim.network().unwrap().sync_all().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stats() - fetched, 0, "declined versions were fetched again");
    assert_eq!(victim.budget().stats.refused.load(Ordering::Relaxed), 6);

    // Newer versions of the declined ones are fetched (and declined: the author's
    // updates for the day are spent), not skipped as fetched from this peer before.
    version(3);
    victim.network().unwrap().sync_all().await.unwrap();
    settle(&victim, "the third versions were offered", |node| {
        node.budget().stats.refused.load(Ordering::Relaxed) >= 16
    })
    .await;

    // A restart does not give the author a new day: its four updates are remembered.
    victim.shutdown().await;
    let victim = Node::start(&options).await.unwrap();
    version(4);
    victim.network().unwrap().sync_all().await.unwrap();
    settle(&victim, "the fourth versions were offered", |node| {
        node.budget().stats.refused.load(Ordering::Relaxed) >= 10
    })
    .await;
    let seqs = victim.store().pack_seqs().unwrap();
    assert!(seqs.iter().all(|(_, seq)| *seq < 3), "an update was taken after the restart: {seqs:?}");
}

/// Past the budget's share for declined listings, the node forgets some. A
/// reconciliation with a peer whose listings did not change since a round that
/// left nothing to fetch ends at the peer's first answer, so the forgotten ones
/// are not fetched again round after round; once the peer's listings change, a
/// round goes through, and fetches what is new but not what was fetched from that
/// peer before and declined; nor does the first round after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forgotten_declines_are_not_fetched_again_from_a_peer_that_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let flooder = start(root, "flooder", &[]).await;
    let offer = |a: u32, p: u32| {
        let mut secret = [8u8; 32];
        secret[..4].copy_from_slice(&a.to_le_bytes());
        let author = Identity::from_secret_bytes(secret);
        let manifest = kit::manifest(author.node_id(), &format!("spam-{p}"), 1, vec![kit::sample("x.wav")]);
        let envelope = manifest.sign(&author).unwrap();
        flooder.store().accept_manifest(&manifest, &envelope, false).unwrap();
    };
    for a in 0..100 {
        for p in 0..5 {
            offer(a, p);
        }
    }
    let home = Home::new(root.join("victim"));
    home.init().unwrap();
    let mut options = options(home, &[addr(&flooder).await], TradeConfig::default());
    // Room for no listing of others, and for 100 declined.
    options.budget = BudgetConfig { max_bytes: 8 * DECLINED_RECORD * 100, ..BudgetConfig::default() };
    assert_eq!(options.budget.max_declined(), 100);
    let victim = Node::start(&options).await.unwrap();
    let stats = || victim.network().unwrap().stats();
    settle(&victim, "the flood arrived", |_| stats().fetched.load(Ordering::Relaxed) >= 500).await;
    settle(&victim, "every listing was stored or declined", |node| {
        let (kept, _) = node.budget().totals();
        let refused = node.budget().stats.refused.load(Ordering::Relaxed);
        let evicted = node.budget().stats.evicted.load(Ordering::Relaxed);
        kept as u64 + refused + evicted >= 500
    })
    .await;
    let forgotten = victim.budget().stats.forgotten.load(Ordering::Relaxed);
    println!(
        "{} kept, {} declined remembered, {forgotten} forgotten",
        victim.budget().totals().0,
        victim.store().declined()
    );
    assert!(victim.store().declined() <= 100, "{} declined records", victim.store().declined());
    assert!(forgotten > 0);
    assert_eq!(victim.status().await.unwrap().dropped.declined_forgotten, forgotten);

    // The round that took the flood in may still be fetching what was forgotten
    // during it; wait until a round ends at the first answer.
    let start = Instant::now();
    while stats().rounds_settled.load(Ordering::Relaxed) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "no round ended at the first answer");
        victim.network().unwrap().sync_all().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (fetched, settled) =
        (stats().fetched.load(Ordering::Relaxed), stats().rounds_settled.load(Ordering::Relaxed));
    for _ in 0..3 {
        victim.network().unwrap().sync_all().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(stats().rounds_settled.load(Ordering::Relaxed) > settled);
    assert_eq!(
        stats().fetched.load(Ordering::Relaxed),
        fetched,
        "listings fetched again from an unchanged peer"
    );

    // The peer's listings change: the next round goes through and fetches the new
    // one, but not again the hundreds fetched from it before and declined.
    offer(1_000, 0);
    victim.network().unwrap().sync_all().await.unwrap();
    settle(&victim, "the changed peer's listings were fetched", |_| {
        stats().fetched.load(Ordering::Relaxed) > fetched
    })
    .await;
    for _ in 0..3 {
        victim.network().unwrap().sync_all().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let again = stats().fetched.load(Ordering::Relaxed) - fetched;
    assert!(again <= 5, "{again} listings fetched again from a peer whose listings changed");
    assert!(
        stats().fetches_skipped.load(Ordering::Relaxed) >= forgotten,
        "{} skipped of {forgotten} forgotten",
        stats().fetches_skipped.load(Ordering::Relaxed)
    );

    // A restart keeps them (in a file while the node is stopped): the first
    // rounds after it fetch none of them again.
    let passed_file = victim.home().sync_passed_path();
    victim.shutdown().await;
    assert!(passed_file.exists(), "the listings not taken were not kept at the stop");
    let victim = Node::start(&options).await.unwrap();
    assert!(!passed_file.exists(), "the file is taken at the start");
    let stats = || victim.network().unwrap().stats();
    settle(&victim, "the first round after the restart skipped the listings not taken", |_| {
        stats().fetches_skipped.load(Ordering::Relaxed) >= forgotten
    })
    .await;
    for _ in 0..3 {
        victim.network().unwrap().sync_all().await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let again = stats().fetched.load(Ordering::Relaxed);
    assert!(again <= 5, "{again} listings fetched again after a restart");
}

/// Listings of an author that the budget declined come back once the node deals
/// with that author: fetching one of its packs forgets their records, and peers
/// are asked for them again at once, though they were fetched from the same peer
/// and not taken before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_authors_declined_listings_are_fetched_once_the_node_deals_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let friend = start(root, "friend", &[]).await;
    let mut packs = Vec::new();
    for (i, hz) in [70.0, 140.0, 280.0].into_iter().enumerate() {
        let pack_dir = root.join(format!("pack-{i}"));
        make_pack_with(&pack_dir, [(0.4, hz), (0.3, hz * 1.5), (0.2, hz * 3.0)]);
        packs.push(publish(&friend, &pack_dir, &format!("Friend Loops {i}")).await);
    }
    let home = Home::new(root.join("victim"));
    home.init().unwrap();
    let mut options = options(home, &[addr(&friend).await], TradeConfig::default());
    options.budget = BudgetConfig { packs_per_author: 2, ..BudgetConfig::default() };
    let victim = Node::start(&options).await.unwrap();
    let held = |node: &Node| packs.iter().filter(|p| node.store().manifest(p).unwrap().is_some()).count();
    settle(&victim, "two listings kept and one declined", |node| {
        held(node) == 2 && node.store().declined() == 1
    })
    .await;
    let declined = *packs.iter().find(|p| victim.store().manifest(p).unwrap().is_none()).unwrap();
    victim.network().unwrap().sync_all().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(held(&victim), 2, "a declined listing is not fetched again");

    let kept = *packs.iter().find(|p| victim.store().manifest(p).unwrap().is_some()).unwrap();
    fetch(&victim, kept, &root.join("library")).await;
    let dealt = Instant::now();
    while held(&victim) < 3 {
        // Reconciliation comes round every 30 s, and would skip what this peer
        // sent before and the node did not take.
        assert!(dealt.elapsed() < Duration::from_secs(10), "the declined listing not fetched again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(victim.store().declined(), 0);
    assert_eq!(victim.budget().totals().0, 3, "an author dealt with is kept past its share");
    wait_for(&victim, "friend loops", declined, false, Duration::from_secs(10)).await;
}
