//! The catalog: publishing and retracting this node's packs, searching and
//! showing what the store holds, resolving pack ids, checking and rebuilding the
//! index.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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

/// What `smpl check` reports: whether the packs held here are whole and
/// undamaged, whether their library copies are as exported, and whether the
/// index agrees with the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckReport {
    /// Packs whose listing is stored (held here or only seen on the network).
    pub packs: usize,
    /// Packs whose content is held here (published, fetched or bought).
    pub held: Vec<PackRef>,
    /// Held packs with a file missing or incomplete in the blob store.
    pub incomplete: Vec<PackRef>,
    /// Stored files whose bytes no longer match their hash.
    pub damaged: Vec<FileRef>,
    /// Library files whose bytes differ from what was exported (the store's copy
    /// is intact; `smpl fetch` writes it again).
    pub edited: Vec<FileRef>,
    /// Held packs with a newer version listed (`smpl fetch` brings it).
    pub outdated: Vec<PackRef>,
    /// Packs in the index.
    pub indexed: usize,
    /// Packs whose index entry disagrees with the store (missing, stale or extra).
    pub index_mismatch: Vec<PackId>,
    /// Entries still waiting in the index queue.
    pub queued: usize,
}

/// A pack as a report names it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackRef {
    pub pack_id: PackId,
    pub title: String,
    pub seq: u64,
}

/// A file of a pack as a report names it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRef {
    pub pack_id: PackId,
    pub title: String,
    /// The file's name in the pack, or its path in the library.
    pub file: String,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.incomplete.is_empty()
            && self.damaged.is_empty()
            && self.index_mismatch.is_empty()
            && self.queued == 0
    }
}

fn pack_ref(m: &Manifest) -> PackRef {
    PackRef { pack_id: m.pack_id, title: m.title.clone(), seq: m.seq }
}

impl Node {
    /// The current manifest of `pack`, or [`NodeError::Retracted`] or
    /// [`NodeError::UnknownPack`].
    pub(crate) fn manifest(&self, pack: &PackId) -> Result<Manifest, NodeError> {
        match self.store.manifest(pack)? {
            Some((manifest, _)) => Ok(manifest),
            None => Err(self.missing(pack)?),
        }
    }

    /// Why `pack` has no manifest here: retracted, or unknown.
    pub(crate) fn missing(&self, pack: &PackId) -> Result<NodeError, NodeError> {
        Ok(match self.store.retraction(pack)? {
            Some(r) => {
                NodeError::Retracted { pack: *pack, on: smpl_protocol::certificate::utc_time(r.retracted_at) }
            }
            None => NodeError::UnknownPack(*pack),
        })
    }

    /// The manifest a fetch works from: the current one, or for a retracted pack
    /// the one kept with our licence (a buyer keeps what it bought).
    pub(crate) fn manifest_to_fetch(&self, pack: &PackId) -> Result<Manifest, NodeError> {
        match self.manifest(pack) {
            Err(NodeError::Retracted { .. }) if self.trade.licensed_manifest(pack)?.is_some() => {
                Ok(self.trade.licensed_manifest(pack)?.expect("checked above"))
            }
            other => other,
        }
    }

    /// Publishes a folder; returns once the pack is stored and searchable.
    pub async fn publish(
        &self,
        request: PublishRequest,
        progress: mpsc::Sender<PublishEvent>,
    ) -> Result<PublishOutcome, PublishError> {
        let draft = self.prepare_publish(request, progress).await?;
        self.finish_publish(draft).await
    }

    /// Analyses and imports a folder to publish, without signing anything.
    pub async fn prepare_publish(
        &self,
        request: PublishRequest,
        progress: mpsc::Sender<PublishEvent>,
    ) -> Result<publish::Draft, PublishError> {
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
        publish::prepare(
            &self.identity,
            &self.config.name,
            &self.store,
            &self.blobs,
            request,
            previous,
            progress,
        )
        .await
    }

    /// Signs, stores and announces a prepared publish.
    pub async fn finish_publish(&self, draft: publish::Draft) -> Result<PublishOutcome, PublishError> {
        let gate = self.trade.gate().clone();
        let register = move |manifest: &Manifest| serving::record_publish(&gate, manifest);
        let (title, prepared_in) = (draft.manifest.title.clone(), draft.prepared_in);
        let started = Instant::now();
        let outcome = publish::finish(&self.identity, &self.store, &self.blobs, draft, &register).await?;
        if outcome.unchanged {
            return Ok(outcome);
        }
        let stored = started.elapsed();
        // Announced first, then indexed here on its own: under a flood of listings the
        // index queue can hold minutes of work, and neither the network nor the
        // producer's own search should wait for it.
        self.announce(&outcome.pack_id, true).await;
        let announced = started.elapsed();
        self.index_now(outcome.pack_id).await;
        self.indexer.wake();
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        tracing::info!(
            pack = %outcome.pack_id,
            "published {title:?}, version {}, {} samples: analysed and imported in {}, signed and stored in {}, announced after {}, searchable after {}",
            outcome.seq,
            outcome.samples,
            secs(prepared_in),
            secs(stored),
            secs(announced),
            secs(started.elapsed())
        );
        Ok(outcome)
    }

    /// Puts the stored state of `pack` into the index now, out of the queue's
    /// order (its queue entry stays, and indexes the same state again later): its
    /// manifest, or nothing once it is retracted.
    async fn index_now(&self, pack: PackId) {
        let indexer = self.indexer.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || indexer.index_now(&pack)).await {
            tracing::warn!(%pack, "indexing one of our packs failed (it stays queued): {e}");
        }
    }

    /// Runs a search on a blocking thread. With the log at debug level for target
    /// `smpl_node::search`, its timings go there: how long it waited for a thread,
    /// how long it ran, the processor time of that, and how often its thread gave
    /// up the core meanwhile (slept: waited for a lock or the disk; preempted).
    pub async fn search(&self, query: SearchQuery) -> Result<SearchResults, NodeError> {
        let index = self.index.clone();
        if !tracing::enabled!(target: "smpl_node::search", tracing::Level::DEBUG) {
            return Ok(tokio::task::spawn_blocking(move || index.search(&query)).await??);
        }
        let queued = std::time::Instant::now();
        Ok(tokio::task::spawn_blocking(move || {
            let waited = queued.elapsed();
            let (started, cpu) = (std::time::Instant::now(), crate::util::thread_cpu_time());
            let switches = crate::util::thread_switches();
            let results = index.search(&query);
            let (slept, preempted) = crate::util::thread_switches();
            tracing::debug!(
                target: "smpl_node::search",
                waited_us = waited.as_micros() as u64,
                ran_us = started.elapsed().as_micros() as u64,
                cpu_us = crate::util::thread_cpu_time().saturating_sub(cpu).as_micros() as u64,
                slept = slept.saturating_sub(switches.0),
                preempted = preempted.saturating_sub(switches.1),
                "search answered"
            );
            results
        })
        .await??)
    }

    pub fn show(&self, pack: &PackId) -> Result<PackView, NodeError> {
        let Some((manifest, envelope)) = self.store.manifest(pack)? else { return Err(self.missing(pack)?) };
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
        // As for a publish: announced first, then taken out of the index on its
        // own, not behind whatever the index queue holds.
        self.announce(pack, false).await;
        self.index_now(*pack).await;
        self.indexer.wake();
        Ok(())
    }

    /// Gossips the newest listing of `pack` and, for content we hold, provides it.
    async fn announce(&self, pack: &PackId, provide: bool) {
        let Some((network, _)) = &self.net else { return };
        match self.store.envelopes(&[*pack], usize::MAX) {
            Ok((envelopes, _)) => {
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
        let mut known: Vec<PackId> = self.store.pack_seqs()?.into_iter().map(|(id, _)| id).collect();
        known.extend(self.store.retracted_ids()?);
        match prefix::find(known, &text, |id| id.to_hex()) {
            Match::One(id) => Ok(id),
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
        for (id, content) in self.blobs.tagged_packs().await? {
            let Some((manifest, _)) = self.store.manifest(&id)? else { continue };
            // The content held is the listed version's, or an older one whose
            // files the collection names.
            let Some(children) = self.blobs.children(&content).await? else {
                report.incomplete.push(pack_ref(&manifest));
                continue;
            };
            report.held.push(pack_ref(&manifest));
            if content != manifest.content {
                report.outdated.push(pack_ref(&manifest));
            }
            let mut whole = true;
            for hash in children.iter().skip(1) {
                if !self.blobs.is_complete(hash).await? {
                    whole = false;
                } else if !self.blobs.verify(hash).await? {
                    let name = manifest
                        .samples
                        .iter()
                        .find(|s| s.hash == *hash)
                        .map_or_else(|| hash.to_string(), |s| s.name.clone());
                    report.damaged.push(FileRef { pack_id: id, title: manifest.title.clone(), file: name });
                }
            }
            if !whole {
                report.incomplete.push(pack_ref(&manifest));
            }
        }
        let library = self.config.library.clone();
        let edited =
            tokio::task::spawn_blocking(move || crate::transfer::edited_library_files(&library)).await?;
        for (pack, path) in edited {
            // A damaged stored file shows as damaged, not also as edited.
            let name = path.to_string_lossy();
            if report.damaged.iter().any(|d| d.pack_id == pack && name.ends_with(d.file.as_str())) {
                continue;
            }
            let title = self.store.manifest(&pack)?.map(|(m, _)| m.title).unwrap_or_default();
            report.edited.push(FileRef { pack_id: pack, title, file: path.display().to_string() });
        }
        Ok(report)
    }

    /// Waits until the index holds everything queued so far.
    pub async fn flush_index(&self) {
        self.indexer.flush().await;
    }
}
