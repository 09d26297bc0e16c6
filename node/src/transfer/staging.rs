//! Staging: a fetch writes each file of a pack while it downloads, instead of
//! copying the pack out of the blob store afterwards.
//!
//! A [`Staging`] folder sits next to the pack folder (`.<title>.<pid>-<n>.smpl-part`,
//! on the same file system, so its files can be renamed into place). `download`
//! hands every verified chunk group of a pack's blob to a [`Writer`] besides the
//! store; `export::finish` renames the files that were staged whole and copies the
//! rest out of the store. The folder goes away with the fetch, whatever happens.
//!
//! The writer appends each 16 KiB chunk group as it arrives, on one blocking
//! thread: written while it is still in the CPU cache, a chunk group costs a
//! third of what the same bytes cost gathered into 1 MiB writes (on the benchmark
//! machine, 0.43 s against 1.27 s of system time per GiB), and a copy out of the
//! store afterwards reads everything back cold as well.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use iroh_blobs::Hash;
use smpl_protocol::Manifest;
use tokio::sync::{mpsc, oneshot};

use super::TransferError;
use super::export::{pack_dir, temp_name};
use crate::blobs::to_iroh;

/// Chunk groups waiting for the writer thread.
const WRITE_QUEUE: usize = 256;

/// The staging folder of one fetch: which blobs belong there and which are
/// staged whole.
#[derive(Debug)]
pub(super) struct Staging {
    dir: PathBuf,
    /// The blobs of the pack's files.
    blobs: HashSet<Hash>,
    /// Those staged whole.
    whole: Mutex<HashSet<Hash>>,
}

impl Staging {
    /// Creates the staging folder for the pack of `manifest` under `library`.
    pub(super) async fn create(manifest: &Manifest, library: &Path) -> Result<Staging, TransferError> {
        let pack = pack_dir(manifest, library)?;
        let parent = pack.parent().unwrap_or(&pack).to_path_buf();
        let dir = parent.join(temp_name(pack.file_name().unwrap_or_default()));
        tokio::fs::create_dir_all(&dir).await.map_err(TransferError::io("create", &dir))?;
        let blobs = manifest.samples.iter().map(|s| to_iroh(&s.hash)).collect();
        Ok(Staging { dir, blobs, whole: Mutex::new(HashSet::new()) })
    }

    /// Where the blob `hash` is staged, if it is a file of the pack.
    pub(super) fn file(&self, hash: &Hash) -> Option<PathBuf> {
        self.blobs.contains(hash).then(|| self.path(hash))
    }

    pub(super) fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    /// Records that the staged file of `hash` holds the whole verified blob.
    pub(super) fn staged(&self, hash: Hash) {
        self.whole.lock().unwrap_or_else(|p| p.into_inner()).insert(hash);
    }

    pub(super) fn is_whole(&self, hash: &Hash) -> bool {
        self.whole.lock().unwrap_or_else(|p| p.into_inner()).contains(hash)
    }

    /// Removes the staging folder and whatever is left in it.
    pub(super) async fn remove(&self) {
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.dir.display(), "cannot remove a staging folder: {e}");
        }
    }
}

enum Op {
    Open { file: u64, path: PathBuf },
    Write { file: u64, offset: u64, data: Bytes },
    Close { file: u64, reply: oneshot::Sender<Option<u64>> },
}

/// Appends chunk groups to staged files on its own thread, which ends when the
/// writer is dropped.
pub(super) struct Writer {
    tx: mpsc::Sender<Op>,
    next: AtomicU64,
}

impl Writer {
    pub(super) fn start() -> Result<Writer, TransferError> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("smpl-staging".into())
            .spawn(move || write_loop(rx))
            .map_err(|e| TransferError::Task(format!("cannot start the staging writer: {e}")))?;
        Ok(Writer { tx, next: AtomicU64::new(0) })
    }

    /// Starts a staged file at `path` (replacing what is there); returns its key.
    pub(super) async fn open(&self, path: PathBuf) -> u64 {
        let file = self.next.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Op::Open { file, path }).await;
        file
    }

    /// Appends `data`, which belongs at `offset` of the file.
    pub(super) async fn write(&self, file: u64, offset: u64, data: Bytes) {
        let _ = self.tx.send(Op::Write { file, offset, data }).await;
    }

    /// Closes the file. The answer is its length if every piece came in order
    /// and was written, `None` otherwise (the file is then copied out of the
    /// store instead).
    pub(super) async fn close(&self, file: u64) -> oneshot::Receiver<Option<u64>> {
        let (reply, done) = oneshot::channel();
        let _ = self.tx.send(Op::Close { file, reply }).await;
        done
    }
}

fn write_loop(mut rx: mpsc::Receiver<Op>) {
    // A file that went wrong stays in the map as `None` until it is closed.
    let mut files: HashMap<u64, Option<(std::fs::File, u64)>> = HashMap::new();
    while let Some(op) = rx.blocking_recv() {
        match op {
            Op::Open { file, path } => {
                let opened = std::fs::File::create(&path)
                    .inspect_err(|e| tracing::debug!(path = %path.display(), "cannot stage a file: {e}"))
                    .ok();
                files.insert(file, opened.map(|f| (f, 0)));
            }
            Op::Write { file, offset, data } => {
                let Some(slot) = files.get_mut(&file) else { continue };
                let ok = match slot {
                    Some((f, len)) if *len == offset => {
                        *len += data.len() as u64;
                        f.write_all(&data).inspect_err(|e| tracing::debug!("staging a file: {e}")).is_ok()
                    }
                    _ => false,
                };
                if !ok {
                    *slot = None;
                }
            }
            Op::Close { file, reply } => {
                let len = files.remove(&file).flatten().map(|(_, len)| len);
                let _ = reply.send(len);
            }
        }
    }
}
