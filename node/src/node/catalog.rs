//! The catalog: publishing and retracting this node's packs, searching and
//! showing what the store holds, resolving pack ids, checking and rebuilding the
//! index.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use smpl_index::{SearchQuery, SearchResults};
use smpl_protocol::{Manifest, PackId, Retraction, Signed};
use tokio::sync::mpsc;

use super::{Node, NodeError};
use crate::publish::{self, PublishError, PublishEvent, PublishOutcome, PublishRequest};
use crate::store::Accepted;
use crate::trade::serving;
use crate::util::now;
use crate::util::prefix::{self, Match};

/// A pack as `smpl show` presents it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackView {
    #[serde(flatten)]
    pub manifest: Manifest,
    /// The signed envelope, hex, as stored and forwarded.
    pub envelope_bytes: usize,
}

/// What `smpl check` reports: whether every stored pack is whole and indexed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Packs whose manifest is stored.
    pub packs: usize,
    /// Packs with a blob missing or incomplete in the blob store.
    pub incomplete: Vec<PackId>,
    /// Packs in the index.
    pub indexed: usize,
    /// Packs whose index entry disagrees with the store (missing, stale or extra).
    pub index_mismatch: Vec<PackId>,
    /// Entries still waiting in the index queue.
    pub queued: usize,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.incomplete.is_empty() && self.index_mismatch.is_empty() && self.queued == 0
    }
}

impl Node {
    /// The current manifest of `pack`, or [`NodeError::UnknownPack`].
    pub(crate) fn manifest(&self, pack: &PackId) -> Result<Manifest, NodeError> {
        Ok(self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?.0)
    }

    /// Publishes a folder; returns once the pack is stored and searchable.
    pub async fn publish(
        &self,
        request: PublishRequest,
        progress: mpsc::Sender<PublishEvent>,
    ) -> Result<PublishOutcome, PublishError> {
        let previous = match &request.update {
            Some(text) => {
                let pack = self.resolve(text).map_err(|e| PublishError::Update(e.to_string()))?;
                let manifest = self.manifest(&pack).map_err(|e| PublishError::Update(e.to_string()))?;
                if manifest.author != self.node_id() {
                    return Err(PublishError::Update(format!(
                        "pack {pack} is {:?}'s, not yours",
                        manifest.author_name
                    )));
                }
                Some(manifest)
            }
            None => None,
        };
        let gate = self.trade.gate().clone();
        let register = move |manifest: &Manifest| serving::record_publish(&gate, manifest);
        let outcome = publish::publish(
            &self.identity,
            &self.config.name,
            &self.store,
            &self.blobs,
            request,
            previous,
            progress,
            &register,
        )
        .await?;
        if outcome.unchanged {
            return Ok(outcome);
        }
        self.indexer.wake();
        self.indexer.flush().await;
        self.announce(&outcome.pack_id, true).await;
        Ok(outcome)
    }

    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, NodeError> {
        let index = self.index.clone();
        Ok(tokio::task::spawn_blocking(move || index.search(&query)).await??)
    }

    pub fn show(&self, pack: &PackId) -> Result<PackView, NodeError> {
        let (manifest, envelope) = self.store.manifest(pack)?.ok_or(NodeError::UnknownPack(*pack))?;
        Ok(PackView { manifest, envelope_bytes: envelope.as_bytes().len() })
    }

    /// Signs and applies a retraction of one of this node's packs.
    pub async fn retract(&self, pack: &PackId) -> Result<(), NodeError> {
        let manifest = self.manifest(pack)?;
        if manifest.author != self.node_id() {
            return Err(NodeError::NotYours { pack: *pack, author: manifest.author });
        }
        let retraction = Retraction {
            pack_id: *pack,
            author: manifest.author,
            slug: manifest.slug.clone(),
            seq: manifest.seq,
            retracted_at: now(),
        };
        let envelope = retraction.sign(&self.identity)?;
        let store = self.store.clone();
        let accepted =
            tokio::task::spawn_blocking(move || store.accept_retraction(&retraction, &envelope, true))
                .await??;
        if accepted == Accepted::New {
            self.blobs.untag_pack(pack).await?;
        }
        self.indexer.wake();
        self.indexer.flush().await;
        self.announce(pack, false).await;
        Ok(())
    }

    /// Gossips the newest listing of `pack` and, for content we hold, provides it.
    async fn announce(&self, pack: &PackId, provide: bool) {
        let Some((network, _)) = &self.net else { return };
        match self.store.envelopes(&[*pack]) {
            Ok(envelopes) => {
                for envelope in envelopes {
                    let _ = network.publish(envelope).await;
                }
            }
            Err(e) => tracing::error!("reading the listing of {pack} to announce it failed: {e}"),
        }
        if provide {
            let _ = network.provide(*pack).await;
        }
    }

    /// Rebuilds the search index from the manifests in the store; returns how
    /// many packs the store holds.
    pub async fn rebuild_index(&self) -> Result<usize, NodeError> {
        self.indexer.rebuild().await;
        Ok(self.store.pack_seqs()?.len())
    }

    /// Resolves a full pack id or a unique prefix (at least 4 hex digits).
    pub fn resolve(&self, text: &str) -> Result<PackId, NodeError> {
        let text = prefix::normalize(text);
        if let Ok(id) = text.parse::<PackId>() {
            return Ok(id);
        }
        if text.len() < 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NodeError::NoSuchPack(text));
        }
        match prefix::find(self.store.pack_seqs()?, &text, |(id, _)| id.to_hex()) {
            Match::One((id, _)) => Ok(id),
            Match::Several => Err(NodeError::Ambiguous(text)),
            Match::None => Err(NodeError::NoSuchPack(text)),
        }
    }

    /// Checks that every stored pack is whole in the blob store and that the index
    /// agrees with the store (after draining the index queue).
    pub async fn check(&self) -> Result<CheckReport, NodeError> {
        self.indexer.flush().await;
        let mut report = CheckReport::default();
        let store = self.store.clone();
        let index = self.index.clone();
        let (stored, indexed) =
            tokio::task::spawn_blocking(move || Ok::<_, NodeError>((store.pack_seqs()?, index.packs()?)))
                .await??;
        report.packs = stored.len();
        report.indexed = indexed.len();
        report.queued = self.store.queue_len();
        let stored_map: HashMap<_, _> = stored.iter().copied().collect();
        let indexed_map: HashMap<_, _> = indexed.iter().copied().collect();
        for (id, seq) in &stored {
            if indexed_map.get(id) != Some(seq) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &indexed {
            if !stored_map.contains_key(id) {
                report.index_mismatch.push(*id);
            }
        }
        for (id, _) in &stored {
            let Some((manifest, _)) = self.store.manifest(id)? else { continue };
            let mut whole = self.blobs.is_complete(&manifest.content).await?;
            for sample in &manifest.samples {
                whole = whole && self.blobs.is_complete(&sample.hash).await?;
            }
            if !whole {
                report.incomplete.push(*id);
            }
        }
        Ok(report)
    }

    /// Waits until the index holds everything queued so far.
    pub async fn flush_index(&self) {
        self.indexer.flush().await;
    }
}
