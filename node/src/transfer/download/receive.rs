//! Reading one get response into the store: each blob whole into memory and then
//! into the store in the background, or chunk group by chunk group into the store
//! as it arrives (see the parent module for why).

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;

use bao_tree::io::BaoContentItem;
use iroh::endpoint::Connection;
use iroh_blobs::Hash;
use iroh_blobs::api::blobs::ImportBaoHandle;
use iroh_blobs::get::GetError;
use iroh_blobs::get::fsm::{
    AtBlobContent, AtBlobHeader, AtEndBlob, BlobContentNext, ConnectedNext, DecodeError,
};
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};

use super::{DropReason, Failure, MEMORY_BLOB_MAX, Next, Session, local};
use crate::transfer::TransferError;

impl Session {
    /// Runs one get request on one connection, storing what arrives.
    pub(super) async fn get(&self, connection: Connection, request: GetRequest) -> Result<(), Failure> {
        let mut landings = Landings::default();
        let result = self.get_into(connection, request, &mut landings).await;
        // Blobs that arrived whole are verified: they are stored also when the
        // rest of the response failed.
        let mut settled = Ok(());
        for landing in landings.queue {
            if let Err(e) = self.land(landing).await {
                settled = Err(e);
            }
        }
        settled.and(result)
    }

    async fn get_into(
        &self,
        connection: Connection,
        request: GetRequest,
        landings: &mut Landings,
    ) -> Result<(), Failure> {
        let root = request.hash;
        let mut next = match self.open(connection, request).await? {
            ConnectedNext::StartRoot(start) => self.receive(start.next(), root, landings).await?.next(),
            ConnectedNext::StartChild(child) => Next::MoreChildren(child),
            ConnectedNext::Closing(closing) => Next::Closing(closing),
        };
        loop {
            match next {
                Next::MoreChildren(child) => {
                    let Some(hash) = self.child_hash(child.offset() - 1) else {
                        next = Next::Closing(child.finish());
                        continue;
                    };
                    next = self.receive(child.next(hash), hash, landings).await?.next();
                }
                Next::Closing(closing) => {
                    closing.next().await.map_err(GetError::from)?;
                    return Ok(());
                }
            }
        }
    }

    /// Receives one blob of a response: whole and small into memory (stored in
    /// the background, see [`Landing`]), otherwise into the store as it arrives.
    async fn receive(
        &self,
        header: AtBlobHeader,
        hash: Hash,
        landings: &mut Landings,
    ) -> Result<AtEndBlob, Failure> {
        let ranges = header.ranges().clone();
        let (content, size) = header.next().await.map_err(DecodeError::from)?;
        let Some(size) = NonZeroU64::new(size) else {
            if hash == Hash::EMPTY {
                return Ok(content.drain().await?);
            }
            return Err(Failure::Drop(DropReason::Corrupt(format!("it claims {hash} is empty"))));
        };
        let whole = ranges.is_superset(&ChunkRanges::bytes(..size.get()));
        if !whole || size.get() > MEMORY_BLOB_MAX {
            return self.receive_into_store(content, hash, size).await;
        }
        let (end, data) = self.receive_in_memory(content, hash, size.get()).await?;
        let store = self.store.clone();
        let add = tokio::spawn(async move {
            let tag =
                store.blobs().add_bytes(data).temp_tag().await.map_err(|e| local("storing a blob")(&e))?;
            if tag.hash() != hash {
                return Err(local("storing a blob")(&format!("it was stored as {}, not {hash}", tag.hash())));
            }
            Ok(())
        });
        landings.push(Landing { size: size.get(), add });
        while landings.bytes > MEMORY_BLOB_MAX {
            let Some(landing) = landings.pop() else { break };
            self.land(landing).await?;
        }
        Ok(end)
    }

    /// Waits until a blob received into memory is stored; it counts as fetched
    /// then.
    async fn land(&self, landing: Landing) -> Result<(), Failure> {
        landing.add.await.map_err(|e| Failure::Local(TransferError::Task(e)))??;
        self.fetched.fetch_add(landing.size, Ordering::Relaxed);
        self.report(false).await;
        Ok(())
    }

    /// A whole blob into memory, verified.
    async fn receive_in_memory(
        &self,
        mut content: AtBlobContent,
        hash: Hash,
        size: u64,
    ) -> Result<(AtEndBlob, Vec<u8>), Failure> {
        let mut data = vec![0u8; size as usize];
        let end = loop {
            match content.next().await {
                BlobContentNext::More((next, item)) => {
                    if let BaoContentItem::Leaf(leaf) = item? {
                        let start = leaf.offset as usize;
                        let Some(slot) = data.get_mut(start..start + leaf.data.len()) else {
                            return Err(Failure::Drop(DropReason::Corrupt(format!(
                                "{hash}: data at {start} beyond its size {size}"
                            ))));
                        };
                        slot.copy_from_slice(&leaf.data);
                    }
                    content = next;
                }
                BlobContentNext::Done(end) => break end,
            }
        };
        Ok((end, data))
    }

    /// The requested ranges of a blob into the store, chunk group by chunk group.
    async fn receive_into_store(
        &self,
        mut content: AtBlobContent,
        hash: Hash,
        size: NonZeroU64,
    ) -> Result<AtEndBlob, Failure> {
        // As iroh-blobs' own get: a buffer of up to 64 chunk groups.
        let buffer = (size.get() / (16 * 1024) + 2).min(64) as usize;
        let ImportBaoHandle { tx, rx } = self
            .store
            .blobs()
            .import_bao(hash, size, buffer)
            .await
            .map_err(|e| local("storing a blob")(&e))?;
        let end = loop {
            match content.next().await {
                BlobContentNext::More((next, item)) => {
                    let item = item?;
                    let leaf = match &item {
                        BaoContentItem::Leaf(leaf) => leaf.data.len() as u64,
                        BaoContentItem::Parent(_) => 0,
                    };
                    if tx.send(item).await.is_err() {
                        // The store gave up on this blob; its answer says why.
                        break None;
                    }
                    self.fetched.fetch_add(leaf, Ordering::Relaxed);
                    self.report(false).await;
                    content = next;
                }
                BlobContentNext::Done(end) => break Some(end),
            }
        };
        drop(tx);
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(local("storing a blob")(&e)),
            Err(e) => return Err(local("storing a blob")(&e)),
        }
        end.ok_or_else(|| local("storing a blob")(&"the store stopped reading"))
    }
}

/// A blob received into memory, on its way into the store.
///
/// Adding it runs in the background while the response goes on (for a pack of
/// small files the store's import would otherwise stall the stream once per
/// file); its bytes count as fetched once it is stored.
struct Landing {
    size: u64,
    add: tokio::task::JoinHandle<Result<(), Failure>>,
}

/// The landings of one response, oldest first, with the bytes held in memory.
#[derive(Default)]
struct Landings {
    queue: VecDeque<Landing>,
    bytes: u64,
}

impl Landings {
    fn push(&mut self, landing: Landing) {
        self.bytes += landing.size;
        self.queue.push_back(landing);
    }

    fn pop(&mut self) -> Option<Landing> {
        let landing = self.queue.pop_front()?;
        self.bytes -= landing.size;
        Some(landing)
    }
}
