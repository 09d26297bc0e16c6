//! Temporary: variants of the import to find where the time goes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::FutureExt;
use futures::stream::{self, StreamExt};
use iroh_blobs::BlobFormat;
use iroh_blobs::api::blobs::{AddPathOptions, AddProgressItem, ImportMode};
use iroh_blobs::store::fs::FsStore;

use crate::child::{Report, audio_files, rss_kb};

async fn quiet(
    store: &FsStore,
    path: &Path,
    mode: ImportMode,
    size: u64,
) -> Result<iroh_blobs::api::TempTag> {
    let progress = store.blobs().add_path_with_opts(AddPathOptions {
        path: path.to_path_buf(),
        mode,
        format: BlobFormat::Raw,
    });
    let stream = progress.stream().await;
    let mut stream = std::pin::pin!(stream);
    let expected = Duration::from_nanos(size / 2); // ~2 GB/s
    if expected > Duration::from_millis(1) {
        tokio::time::sleep(expected).await;
    }
    loop {
        while let Some(item) = stream.next().now_or_never() {
            match item {
                None => anyhow::bail!("ended"),
                Some(AddProgressItem::Done(tt)) => return Ok(tt),
                Some(AddProgressItem::Error(e)) => anyhow::bail!("{e}"),
                Some(_) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn streamed(store: &FsStore, path: &Path, size: u64, chunk: usize) -> Result<iroh_blobs::api::TempTag> {
    use std::io::Read;
    use tokio_util::bytes::Bytes;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(2);
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) => { let _ = tx.blocking_send(Err(e)); return; }
        };
        loop {
            let mut buf = Vec::with_capacity(chunk);
            match (&mut file).take(chunk as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => { if tx.blocking_send(Ok(Bytes::from(buf))).is_err() { return; } }
                Err(e) => { let _ = tx.blocking_send(Err(e)); return; }
            }
        }
    });
    let data = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let progress = store.blobs().add_stream(data).await;
    let stream = progress.stream().await;
    let mut stream = std::pin::pin!(stream);
    // Copy phase: real waker, few items.
    loop {
        match stream.next().await {
            None => anyhow::bail!("ended"),
            Some(AddProgressItem::Done(tt)) => return Ok(tt),
            Some(AddProgressItem::Error(e)) => anyhow::bail!("{e}"),
            Some(AddProgressItem::CopyDone) => break,
            Some(_) => {}
        }
    }
    if size >= 4 << 20 {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            while let Some(item) = stream.next().now_or_never() {
                match item {
                    None => anyhow::bail!("ended"),
                    Some(AddProgressItem::Done(tt)) => return Ok(tt),
                    Some(AddProgressItem::Error(e)) => anyhow::bail!("{e}"),
                    Some(_) => {}
                }
            }
        }
    }
    loop {
        match stream.next().await {
            None => anyhow::bail!("ended"),
            Some(AddProgressItem::Done(tt)) => return Ok(tt),
            Some(AddProgressItem::Error(e)) => anyhow::bail!("{e}"),
            Some(_) => {}
        }
    }
}

async fn bytes_or_copy(store: &FsStore, path: &Path, size: u64) -> Result<iroh_blobs::api::TempTag> {
    if size > 1 << 20 {
        return quiet(store, path, ImportMode::Copy, size).await;
    }
    let p = path.to_path_buf();
    let data = tokio::task::spawn_blocking(move || std::fs::read(p)).await??;
    Ok(store.blobs().add_bytes(data).temp_tag().await?)
}

async fn plain(store: &FsStore, path: &Path, mode: ImportMode) -> Result<iroh_blobs::api::TempTag> {
    Ok(store
        .blobs()
        .add_path_with_opts(AddPathOptions { path: path.to_path_buf(), mode, format: BlobFormat::Raw })
        .temp_tag()
        .await?)
}

pub fn run(corpus: &Path, store_dir: &Path, variant: &str, workers: usize) -> Result<Report> {
    let files = audio_files(corpus)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let started = Instant::now();
        let blobs = smpl_node::Blobs::open(store_dir).await?;
        let store = blobs.store().clone();
        let blobs = &blobs;
        let staging = store_dir.join("staging");
        std::fs::create_dir_all(&staging)?;
        let store = &store;
        let staging = &staging;
        let results: Vec<Result<_>> = stream::iter(files.iter().enumerate())
            .map(|(i, (_, path, size))| async move {
                match variant {
                    "copy" => plain(store, path, ImportMode::Copy).await,
                    "ref" => plain(store, path, ImportMode::TryReference).await,
                    "copy-quiet" => quiet(store, path, ImportMode::Copy, *size).await,
                    "ref-quiet" => quiet(store, path, ImportMode::TryReference, *size).await,
                    "stream" => streamed(store, path, *size, 1 << 20).await,
                    "stream256" => streamed(store, path, *size, 256 << 10).await,
                    "smpl" => Ok(blobs.import_file(path).await?),
                    "bytes" => bytes_or_copy(store, path, *size).await,
                    "stage" => {
                        let target = staging.join(i.to_string());
                        let p = path.clone();
                        let t2 = target.clone();
                        tokio::task::spawn_blocking(move || std::fs::copy(&p, &t2)).await??;
                        quiet(store, &target, ImportMode::TryReference, *size).await
                    }
                    _ => anyhow::bail!("unknown variant"),
                }
            })
            .buffer_unordered(workers)
            .collect()
            .await;
        let mut tags = Vec::new();
        for r in results {
            tags.push(r?);
        }
        store.sync_db().await?;
        let secs = started.elapsed().as_secs_f64();
        store.shutdown().await?;
        Ok(Report {
            secs,
            files: files.len(),
            bytes: files.iter().map(|f| f.2).sum(),
            hwm_kb: rss_kb().1,
            ..Report::default()
        })
    })
}
