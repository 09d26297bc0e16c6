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
        let store = FsStore::load(store_dir).await?;
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
