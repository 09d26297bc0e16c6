//! Auditioning: the preview clip of one sample, from the local store or fetched on
//! demand from a node that serves the pack (previews are free, paid packs too),
//! then kept in the store and written to `<home>/previews/<hash>.ogg` for players.

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use smpl_protocol::limits::MAX_PREVIEW_BYTES;
use smpl_protocol::{BlobHash, PackId};

use super::{Node, NodeError};
use crate::home::HomeError;
use crate::trade::serving;
use crate::util::fs::{mode, write_atomic};

/// What `smpl audition` reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Preview {
    pub pack_id: PackId,
    pub sample: String,
    pub preview: BlobHash,
    /// The clip as a file (Ogg Vorbis).
    pub path: PathBuf,
    pub bytes: u64,
    /// Whether it came over the network now (else it was stored here already).
    pub fetched: bool,
    /// How long getting it took, in milliseconds.
    pub millis: f64,
}

impl Node {
    /// The preview of the sample of `pack` named `sample` (its file name, or a
    /// unique part of it, case-insensitive).
    pub async fn preview(&self, pack: &PackId, sample: &str) -> Result<Preview, NodeError> {
        let started = Instant::now();
        let manifest = self.manifest(pack)?;
        let wanted = sample.to_lowercase();
        let exact = manifest.samples.iter().find(|s| s.name == sample);
        let mut partial = manifest.samples.iter().filter(|s| s.name.to_lowercase().contains(&wanted));
        let entry = match (exact, partial.next(), partial.next()) {
            (Some(entry), _, _) | (None, Some(entry), None) => entry,
            (None, Some(_), Some(_)) => {
                let names: Vec<String> = manifest
                    .samples
                    .iter()
                    .filter(|s| s.name.to_lowercase().contains(&wanted))
                    .map(|s| s.name.clone())
                    .collect();
                let mut candidates = names.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
                if names.len() > 10 {
                    candidates.push_str(&format!(" and {} more", names.len() - 10));
                }
                return Err(NodeError::AmbiguousSample { pack: *pack, sample: sample.into(), candidates });
            }
            (None, None, _) => {
                return Err(NodeError::NoSample {
                    pack: *pack,
                    sample: sample.into(),
                    why: "no sample of the pack has that name",
                });
            }
        };
        let hash = entry.preview.ok_or(NodeError::NoSample {
            pack: *pack,
            sample: entry.name.clone(),
            why: "the pack has no preview of it",
        })?;
        let mut fetched = false;
        let bytes = match self.blobs.read(&hash, MAX_PREVIEW_BYTES).await? {
            Some(bytes) => bytes,
            None => {
                let transfer = self.transfer().ok_or(NodeError::Offline)?;
                let providers = self.reachable_providers(&manifest).await?;
                // A preview is free to anyone; recorded before it arrives, kept by a tag.
                serving::record_preview(self.trade.gate(), &manifest, hash).await?;
                transfer.fetch_blob(hash, &providers, MAX_PREVIEW_BYTES).await?;
                self.blobs.tag_preview(&hash).await?;
                fetched = true;
                self.blobs.read(&hash, MAX_PREVIEW_BYTES).await?.ok_or(NodeError::NoSample {
                    pack: *pack,
                    sample: entry.name.clone(),
                    why: "its preview vanished from the store",
                })?
            }
        };
        let path = self.home.root().join("previews").join(format!("{hash}.ogg"));
        if !path.exists() {
            let (target, bytes) = (path.clone(), bytes.clone());
            tokio::task::spawn_blocking(move || write_atomic(&target, &bytes, mode::DEFAULT))
                .await?
                .map_err(|e| HomeError::Io { action: "write", path: path.clone(), source: e.source })?;
        }
        Ok(Preview {
            pack_id: *pack,
            sample: entry.name.clone(),
            preview: hash,
            path,
            bytes: bytes.len() as u64,
            fetched,
            millis: started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}
