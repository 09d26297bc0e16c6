//! Fetching: a pack from whoever serves it (its author first, then DHT provider
//! records), a paid one after showing our license to providers that prove they
//! hold the content, and a ticket for stock iroh-blobs clients.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use smpl_protocol::wire::{TradeRequest, TradeResponse};
use smpl_protocol::{Envelope, Manifest, NodeId, PackId};
use tokio::sync::mpsc;

use super::{Node, NodeError};
use crate::net::Network;
use crate::trade::serving;
use crate::transfer::{DownloadProgress, TransferError};

/// What `smpl fetch` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchOutcome {
    pub pack_id: PackId,
    pub path: PathBuf,
    pub files: usize,
    pub bytes: u64,
    /// Bytes that came over the network in this fetch (what was here already,
    /// such as the unchanged files of an earlier version, is not fetched again).
    pub downloaded: u64,
    pub providers: usize,
}

/// Progress of a fetch, streamed to the CLI as JSON lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FetchEvent {
    Started { bytes: u64, providers: usize },
    Progress { bytes: u64 },
    Done(FetchOutcome),
    Error { message: String },
}

impl Node {
    /// Downloads a pack from whoever serves it, verifies it, and writes its files
    /// under the library (or `out`); then serves it to others.
    pub async fn fetch(
        &self,
        pack: &PackId,
        out: Option<PathBuf>,
        progress: mpsc::Sender<FetchEvent>,
    ) -> Result<FetchOutcome, NodeError> {
        let (network, transfer) = self.net()?;
        let manifest = self.manifest_to_fetch(pack)?;
        let license = self.license_to_fetch(&manifest).await?;
        let mut providers = Vec::new();
        let mut downloaded = 0;
        if self.blobs.pack_content(pack).await? != Some(manifest.content) {
            providers = self.reachable_providers(&manifest).await?;
            // Provenance first: the gate knows the terms of every blob before it is stored.
            let _downloading =
                serving::record_fetch(self.trade.gate(), &self.blobs, &manifest, license.is_some()).await?;
            if let Some(license) = license {
                providers = present(network, &manifest, providers, license).await?;
            }
            let total: u64 = manifest.samples.iter().map(|s| s.size).sum();
            let _ = progress.send(FetchEvent::Started { bytes: total, providers: providers.len() }).await;
            let (tick, mut ticks) = mpsc::channel::<DownloadProgress>(16);
            let forward = progress.clone();
            tokio::spawn(async move {
                while let Some(p) = ticks.recv().await {
                    let _ = forward.try_send(FetchEvent::Progress { bytes: p.done });
                }
            });
            downloaded = transfer.download(manifest.content, &providers, Some(tick)).await?.fetched;
            self.blobs.tag_pack(pack, &manifest.content).await?;
        }
        let library = out.unwrap_or_else(|| self.config.library.clone());
        // A stored file found damaged on the way out (a library hard link edited
        // in place) is fetched again from a provider and written back, then the
        // export runs again; damaged bytes never reach the library.
        let mut restored = 0;
        let exported = loop {
            match transfer.export(&manifest, &library).await {
                Err(TransferError::Damaged { name, hash }) if restored < manifest.samples.len() => {
                    tracing::warn!(pack = %pack, file = %name, "the stored copy is damaged; fetching it again");
                    if providers.is_empty() {
                        providers = self.reachable_providers(&manifest).await?;
                        if let Some(license) = self.license_to_fetch(&manifest).await? {
                            providers = present(network, &manifest, providers, license).await?;
                        }
                    }
                    transfer
                        .restore_blob(hash, &providers)
                        .await
                        .map_err(|e| NodeError::CannotRestore { file: name, reason: e.to_string() })?;
                    restored += 1;
                }
                other => break other?,
            }
        };
        self.deal_with(*pack, manifest.author).await;
        if serving::servable(self.trade.gate(), &self.blobs, &manifest).await? {
            network.provide(*pack).await?;
        } else {
            tracing::info!(
                pack = %pack,
                "not announcing pack {pack} as provided: some of its content is held here under other terms"
            );
        }
        Ok(FetchOutcome {
            pack_id: *pack,
            path: exported.path,
            files: exported.files,
            bytes: exported.bytes,
            downloaded,
            providers: providers.len(),
        })
    }

    /// The nodes that serve `manifest`'s pack (its author first, then DHT provider
    /// records) and are reachable now; an error when there are none.
    pub(crate) async fn reachable_providers(&self, manifest: &Manifest) -> Result<Vec<NodeId>, NodeError> {
        let (network, _) = self.net()?;
        let me = self.node_id();
        let mut candidates = vec![manifest.author];
        for node in network.find_providers(manifest.pack_id).await.unwrap_or_default() {
            if !candidates.contains(&node) {
                candidates.push(node);
            }
        }
        candidates.retain(|n| *n != me);
        let checks = futures::future::join_all(candidates.iter().map(|n| network.connect(*n))).await;
        let providers: Vec<NodeId> = candidates
            .into_iter()
            .zip(checks)
            .filter(|(_, ok)| *ok.as_ref().unwrap_or(&false))
            .map(|(n, _)| n)
            .collect();
        if providers.is_empty() {
            return Err(NodeError::NoProviders(manifest.pack_id));
        }
        Ok(providers)
    }

    /// A ticket that stock iroh-blobs clients (e.g. `sendme receive`) can fetch a
    /// free pack with.
    pub fn share(&self, pack: &PackId) -> Result<String, NodeError> {
        let (_, transfer) = self.net()?;
        let manifest = self.manifest(pack)?;
        if !manifest.is_free() {
            return Err(NodeError::NotFree(*pack));
        }
        Ok(transfer.ticket(manifest.content))
    }
}

/// Shows our license to each provider that is the pack's author or proves it
/// holds the content; returns those that accepted it. Others never see it, so a
/// node that only claims to provide a pack does not learn who bought it.
async fn present(
    network: &Network,
    manifest: &Manifest,
    providers: Vec<NodeId>,
    license: Envelope,
) -> Result<Vec<NodeId>, NodeError> {
    let pack = &manifest.pack_id;
    let bytes = ByteBuf::from(license.into_bytes());
    let proofs = providers.iter().map(|node| async move {
        if *node == manifest.author {
            return Ok(());
        }
        proves_possession(network, *node, manifest).await
    });
    let mut reasons = Vec::new();
    let mut trusted = Vec::new();
    for (node, proof) in providers.iter().zip(futures::future::join_all(proofs).await) {
        match proof {
            Ok(()) => trusted.push(*node),
            Err(reason) => reasons.push(format!("{node}: {reason}")),
        }
    }
    let answers = trusted.iter().map(|node| network.trade(*node, TradeRequest::Present(bytes.clone())));
    let mut accepted = Vec::new();
    for (node, answer) in trusted.iter().zip(futures::future::join_all(answers).await) {
        match answer {
            Ok(TradeResponse::Accepted) => accepted.push(*node),
            Ok(TradeResponse::Refused(reason)) => reasons.push(format!("{node}: {reason}")),
            Ok(other) => reasons.push(format!("{node}: unexpected answer {other:?}")),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if accepted.is_empty() {
        return Err(NodeError::LicenseRefused { pack: *pack, reasons: reasons.join("; ") });
    }
    Ok(accepted)
}

/// Asks `node` to prove it holds a randomly chosen chunk of a randomly chosen file
/// of the pack (one over a chunk long); an error says why it did not.
async fn proves_possession(network: &Network, node: NodeId, manifest: &Manifest) -> Result<(), String> {
    use smpl_protocol::possession::{CHUNK_BYTES, chunks, verify};
    let provable: Vec<_> = manifest.samples.iter().filter(|s| s.size > CHUNK_BYTES).collect();
    if provable.is_empty() {
        return Err(
            "the pack has no file long enough to prove possession of; only its author is asked".into()
        );
    }
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let pick = u64::from_le_bytes(random[..8].try_into().unwrap_or_default());
    let sample = provable[(pick % provable.len() as u64) as usize];
    let chunk = u64::from_le_bytes(random[8..].try_into().unwrap_or_default()) % chunks(sample.size);
    let answer = network.trade(node, TradeRequest::Prove { blob: sample.hash, chunk }).await;
    match answer {
        Ok(TradeResponse::Proof(hashes)) => {
            let hashes: Vec<[u8; 32]> =
                hashes.iter().filter_map(|h| <[u8; 32]>::try_from(h.as_ref()).ok()).collect();
            if verify(&sample.hash, sample.size, chunk, &hashes) {
                Ok(())
            } else {
                tracing::warn!(%node, pack = %manifest.pack_id, "a provider's proof of possession did not verify");
                Err("its proof of holding the content is wrong; the license was not shown to it".into())
            }
        }
        Ok(TradeResponse::Refused(reason)) => Err(format!("did not prove it holds the content: {reason}")),
        Ok(other) => Err(format!("unexpected answer to a proof request: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}
