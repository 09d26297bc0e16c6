//! What this node may serve: the glue between the blob store, the provenance gate
//! ([`LicenseGate`]) and the network's provider records.
//!
//! - Before a pack's blobs arrive, their provenance is recorded
//!   ([`record_fetch`]): under a licence, every blob of the pack is marked
//!   licensed; for a free pack, only the blobs that are not here yet are marked as
//!   downloaded free. Bytes this node already held keep the terms they came with.
//! - A pack is announced as provided only when every one of its blobs may be
//!   served under that pack's terms ([`servable`]): a free listing that names paid
//!   bytes held here does not make this node a provider of them.
//! - A home whose provenance was never recorded (older homes) gets it rebuilt from
//!   the store's tags and this node's manifests and licences ([`rebuild`]); the
//!   rebuild gives nothing that the records of a fresh fetch would not.
//! - After each garbage collection, the records of blobs that are gone are
//!   dropped ([`prune`]).

use std::time::Duration;

use smpl_protocol::{BlobHash, Manifest, NodeId, PackId, Signed, collection};
use tokio_util::sync::CancellationToken;

use super::{LicenseGate, Origin, Source, Trade, TradeError};
use crate::blobs::{BlobError, Blobs, DownloadGuard};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trade(#[from] TradeError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Every blob a pack's content consists of, as its manifest describes it: the
/// collection root, the collection's metadata blob (file names) and each file.
pub fn pack_hashes(manifest: &Manifest) -> Vec<BlobHash> {
    let mut hashes = Vec::with_capacity(manifest.samples.len() + 2);
    hashes.push(manifest.content);
    hashes.push(collection::metadata_hash(manifest.samples.iter().map(|s| &s.name)));
    hashes.extend(manifest.samples.iter().map(|s| s.hash));
    hashes
}

fn origin(manifest: &Manifest, source: Source) -> Origin {
    Origin { source, pack: manifest.pack_id, content: manifest.content, seller: manifest.author }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ServingError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

/// Records where the blobs of `manifest` come from before any of them is fetched,
/// and protects them from garbage collection until the guard is dropped.
/// `licensed`: the fetch runs under a licence this node holds for that content.
pub async fn record_fetch(
    gate: &LicenseGate,
    blobs: &Blobs,
    manifest: &Manifest,
    licensed: bool,
) -> Result<DownloadGuard, ServingError> {
    let hashes = pack_hashes(manifest);
    let guard = blobs.downloading().protect(&hashes);
    let (record, source) = if licensed {
        (hashes, Source::Licensed)
    } else if manifest.is_free() {
        let mut missing = Vec::new();
        for hash in hashes {
            if !blobs.is_complete(&hash).await? {
                missing.push(hash);
            }
        }
        (missing, Source::DownloadedFree)
    } else {
        // Our own paid pack: published here, recorded then.
        return Ok(guard);
    };
    let (gate, origin) = (gate.clone(), origin(manifest, source));
    blocking(move || gate.record(&record, &origin)).await?;
    Ok(guard)
}

/// Records the blobs of a pack this node publishes (before its manifest is
/// stored, so before any peer learns of it), with its previews.
pub fn record_publish(gate: &LicenseGate, manifest: &Manifest) -> Result<(), StoreError> {
    let source = if manifest.is_free() { Source::PublishedFree } else { Source::PublishedPaid };
    gate.record(&pack_hashes(manifest), &origin(manifest, source))?;
    let previews: Vec<BlobHash> =
        manifest.samples.iter().filter_map(|s| s.preview).chain(manifest.cover).collect();
    gate.record(&previews, &origin(manifest, Source::Preview))
}

/// Records a preview clip fetched from a peer (previews are free to anyone).
pub async fn record_preview(
    gate: &LicenseGate,
    manifest: &Manifest,
    hash: BlobHash,
) -> Result<(), ServingError> {
    let (gate, origin) = (gate.clone(), origin(manifest, Source::Preview));
    blocking(move || gate.record(&[hash], &origin)).await
}

/// Whether this node may announce itself as a provider of `manifest`'s pack:
/// it holds that content whole, and every blob of it may be served under the
/// pack's terms.
pub async fn servable(gate: &LicenseGate, blobs: &Blobs, manifest: &Manifest) -> Result<bool, ServingError> {
    if blobs.pack_content(&manifest.pack_id).await? != Some(manifest.content) {
        return Ok(false);
    }
    let (gate, manifest) = (gate.clone(), manifest.clone());
    Ok(tokio::task::spawn_blocking(move || {
        gate.servable(&pack_hashes(&manifest), manifest.is_free(), &manifest.author, &manifest.content)
    })
    .await?)
}

/// Rebuilds provenance from the store's tags, for a home that has none: a pack
/// this node published gets its publish records; a pack held under a licence of
/// ours gets licensed records; a free pack by someone else whose current manifest
/// matches the tagged content gets downloaded-free records (any licence or paid
/// pack of ours that shares a blob still wins, as for a fresh fetch); anything
/// else stays unrecorded, so it is served to nobody.
pub async fn rebuild(
    gate: &LicenseGate,
    blobs: &Blobs,
    store: &Store,
    trade: &Trade,
    me: NodeId,
) -> Result<usize, ServingError> {
    let mut recorded = 0;
    for (pack, content) in blobs.tagged_packs().await? {
        let Some(children) = blobs.children(&content).await? else { continue };
        let hashes: Vec<BlobHash> = std::iter::once(content).chain(children).collect();
        let manifest = {
            let store = store.clone();
            blocking(move || Ok(store.manifest(&pack)?.map(|(m, _)| m))).await?
        };
        let licence = {
            let trade = trade.clone();
            tokio::task::spawn_blocking(move || trade.license_for(&pack, &content)).await??
        };
        let origin = match (&manifest, licence) {
            (_, Some(envelope)) => {
                let token =
                    smpl_protocol::LicenseToken::from_envelope(&envelope).map_err(TradeError::Sign)?;
                Some(Origin { source: Source::Licensed, pack, content, seller: token.seller })
            }
            (Some(m), None) if m.content == content && m.author == me => {
                Some(origin(m, if m.is_free() { Source::PublishedFree } else { Source::PublishedPaid }))
            }
            (Some(m), None) if m.content == content && m.is_free() => Some(origin(m, Source::DownloadedFree)),
            _ => None,
        };
        if let Some(origin) = origin {
            let gate = gate.clone();
            blocking(move || gate.record(&hashes, &origin)).await?;
            recorded += 1;
        }
    }
    for (pack, previews) in blobs.tagged_previews().await? {
        let Some(children) = blobs.children(&previews).await? else { continue };
        // The first child is the collection's metadata blob, not a clip.
        let clips: Vec<BlobHash> = children.into_iter().skip(1).collect();
        let origin = Origin { source: Source::Preview, pack, content: previews, seller: me };
        let gate = gate.clone();
        blocking(move || gate.record(&clips, &origin)).await?;
    }
    Ok(recorded)
}

/// The packs this node may announce as provided.
pub async fn provided(gate: &LicenseGate, blobs: &Blobs, store: &Store) -> Result<Vec<PackId>, ServingError> {
    let mut packs = Vec::new();
    for (pack, _) in blobs.tagged_packs().await? {
        let manifest = {
            let store = store.clone();
            blocking(move || Ok(store.manifest(&pack)?.map(|(m, _)| m))).await?
        };
        if let Some(manifest) = manifest
            && servable(gate, blobs, &manifest).await?
        {
            packs.push(pack);
        }
    }
    Ok(packs)
}

/// After each garbage collection (every `interval`), drops the provenance of
/// blobs that are gone, so records do not outlive their bytes (downloads under
/// way keep theirs). Runs until `cancel`.
pub async fn prune(gate: LicenseGate, blobs: Blobs, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let keep = blobs.downloading().hashes();
        let handle = tokio::runtime::Handle::current();
        let (gate, store) = (gate.clone(), blobs.clone());
        let pruned = tokio::task::spawn_blocking(move || {
            gate.prune(|hash| handle.block_on(store.is_stored(hash)), &keep)
        })
        .await;
        match pruned {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(records = n, "pruned the provenance of collected blobs"),
            Ok(Err(e)) => tracing::warn!("pruning provenance failed: {e}"),
            Err(_) => return,
        }
    }
}
