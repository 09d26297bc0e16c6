//! The smpl side of the benchmark, each phase in its own process so that its peak
//! RSS (`VmHWM`) is its own: the parent re-executes this binary with a hidden
//! subcommand and reads one JSON line from its stdout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::stream::{self, StreamExt};
use iroh_blobs::api::blobs::{AddPathOptions, ImportMode};
use serde::{Deserialize, Serialize};
use smpl_node::Blobs;
use smpl_node::publish::{self, PublishRequest};
use smpl_protocol::{BlobHash, Identity, PackId};

/// What a child phase reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Wall-clock seconds of the measured work only (no process start, no runtime setup).
    pub secs: f64,
    pub files: usize,
    pub bytes: u64,
    /// Seconds of audio analysed (analysis and publish).
    pub audio_secs: f64,
    /// Resident set right before the work started (store, runtime and sled open), in kB.
    pub idle_rss_kb: u64,
    /// Peak resident set of the process (`VmHWM`), in kB.
    pub hwm_kb: u64,
}

/// Audio files under `dir`, as (name inside the pack, path), sorted by name.
pub fn audio_files(dir: &Path) -> Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wav") {
                let name = path.strip_prefix(dir)?.to_string_lossy().into_owned();
                out.push((name, path, entry.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `VmRSS` and `VmHWM` of this process in kB.
pub fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// How the import child stores files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// `Blobs::import_file`, as `publish` does.
    Smpl,
    /// iroh-blobs' `add_path` in `Copy` mode awaited with `temp_tag()`: the
    /// store's own import, a reference point for `Blobs::import_file`.
    AddPathCopy,
    /// The store's share alone: every file is read into memory before the clock
    /// starts, then handed over with `Blobs::add_bytes`.
    StoreBytes,
    /// No store: read, hash (BLAKE3), write a copy named by its hash and rename it
    /// into place, one file at a time on each core. What a copying store could
    /// reach on this machine.
    CopyHash,
}

/// Hashes and stores every file into a fresh store at `store_dir` the way
/// `publish` does (`workers` files at a time), then stores and syncs the collection.
pub fn import(corpus: &Path, store_dir: &Path, method: Method, workers: usize) -> Result<Report> {
    let files = audio_files(corpus)?;
    if store_dir.exists() {
        bail!("{} exists; the import needs a fresh store", store_dir.display());
    }
    if method == Method::CopyHash {
        return copy_hash(&files, store_dir);
    }
    let preloaded: Vec<Option<Vec<u8>>> = match method {
        Method::StoreBytes => {
            files.iter().map(|f| std::fs::read(&f.1).map(Some)).collect::<Result<_, _>>()?
        }
        _ => vec![None; files.len()],
    };
    runtime()?.block_on(async {
        let idle_rss_kb = rss_kb().0;
        let started = Instant::now();
        let blobs = Blobs::open(store_dir).await?;
        let blobs = &blobs;
        let imported: Vec<_> = stream::iter(files.iter().zip(preloaded))
            .map(|((name, path, _), data)| async move {
                let tag = match (method, data) {
                    (Method::StoreBytes, Some(data)) => blobs.add_bytes(data).await?,
                    (Method::Smpl | Method::StoreBytes | Method::CopyHash, _) => {
                        blobs.import_file(path).await?
                    }
                    (Method::AddPathCopy, _) => {
                        let options = AddPathOptions {
                            path: path.clone(),
                            mode: ImportMode::Copy,
                            format: iroh_blobs::BlobFormat::Raw,
                        };
                        blobs.store().blobs().add_path_with_opts(options).temp_tag().await?
                    }
                };
                anyhow::Ok((name.clone(), tag))
            })
            .buffer_unordered(workers)
            .collect()
            .await;
        let mut names = Vec::new();
        let mut tags = Vec::new();
        for result in imported {
            let (name, tag) = result?;
            names.push((name, BlobHash(*tag.hash().as_bytes())));
            tags.push(tag);
        }
        names.sort();
        let pack = PackId::derive(&Identity::from_secret_bytes([7; 32]).node_id(), "bench");
        blobs.store_pack(&pack, names.clone()).await?;
        drop(tags);
        let secs = started.elapsed().as_secs_f64();
        let hwm_kb = rss_kb().1;
        verify(blobs, &files, &names).await?;
        blobs.shutdown().await;
        Ok(Report {
            secs,
            files: files.len(),
            bytes: files.iter().map(|f| f.2).sum(),
            idle_rss_kb,
            hwm_kb,
            ..Report::default()
        })
    })
}

/// [`Method::CopyHash`]: one thread per core takes the next file, reads it, hashes
/// it, writes it to a temporary file in `dir` and renames that to its hash.
fn copy_hash(files: &[(String, PathBuf, u64)], dir: &Path) -> Result<Report> {
    std::fs::create_dir_all(dir)?;
    let idle_rss_kb = rss_kb().0;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    while let Some((_, path, _)) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let data = std::fs::read(path)?;
                        let hash = blake3::hash(&data);
                        let temp = dir.join(format!("{}.tmp", hash.to_hex()));
                        std::fs::write(&temp, &data)?;
                        std::fs::rename(&temp, dir.join(hash.to_hex().as_str()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a copy thread panicked"))?)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let written = std::fs::read_dir(dir)?.count();
    let distinct: std::collections::HashSet<_> =
        files.iter().map(|f| std::fs::read(&f.1).map(|d| blake3::hash(&d))).collect::<Result<_, _>>()?;
    if written != distinct.len() {
        bail!("{written} copies for {} distinct files", distinct.len());
    }
    Ok(Report {
        secs,
        files: files.len(),
        bytes: files.iter().map(|f| f.2).sum(),
        idle_rss_kb,
        hwm_kb: rss_kb().1,
        ..Report::default()
    })
}

/// After the clock stopped: every file's blob is complete under the file's BLAKE3
/// hash, and a few of them read back byte for byte.
async fn verify(blobs: &Blobs, files: &[(String, PathBuf, u64)], names: &[(String, BlobHash)]) -> Result<()> {
    for (i, ((name, path, _), (stored_name, hash))) in files.iter().zip(names).enumerate() {
        if name != stored_name {
            bail!("collection names out of order: {name} vs {stored_name}");
        }
        let data = std::fs::read(path)?;
        if blake3::hash(&data).as_bytes() != &hash.0 {
            bail!("{name}: the stored hash is not the file's BLAKE3 hash");
        }
        if !blobs.is_complete(hash).await? {
            bail!("{name}: the blob is not complete in the store");
        }
        if i % 97 == 0 {
            let stored = blobs.store().blobs().get_bytes(iroh_blobs::Hash::from_bytes(hash.0)).await?;
            if stored.as_ref() != data.as_slice() {
                bail!("{name}: the stored bytes differ from the file");
            }
        }
    }
    Ok(())
}

/// Runs `smpl_audio::analyze_file` over every file on `threads` threads.
pub fn analyze(corpus: &Path, threads: usize, limit: Option<usize>) -> Result<Report> {
    let mut files = audio_files(corpus)?;
    if let Some(limit) = limit {
        files.truncate(limit);
    }
    let idle_rss_kb = rss_kb().0;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let audio_secs: f64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<f64> {
                    let mut secs = 0.0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, path, _)) = files.get(i) else { return Ok(secs) };
                        let a = smpl_audio::analyze_file(path)?;
                        secs += a.frames as f64 / a.sample_rate as f64;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("analysis thread panicked"))?)
            .sum::<Result<f64>>()
    })?;
    Ok(Report {
        secs: started.elapsed().as_secs_f64(),
        files: files.len(),
        bytes: files.iter().map(|f| f.2).sum(),
        audio_secs,
        idle_rss_kb,
        hwm_kb: rss_kb().1,
    })
}

/// A full `publish::publish` into a fresh home: analysis, import, collection,
/// signed manifest, sled.
pub fn publish(corpus: &Path, home: &Path) -> Result<Report> {
    if home.exists() {
        bail!("{} exists; the publish needs a fresh home", home.display());
    }
    let files = audio_files(corpus)?;
    runtime()?.block_on(async {
        let store = smpl_node::Store::open(&home.join("db"))?;
        let blobs = Blobs::open(&home.join("blobs")).await?;
        let identity = Identity::from_secret_bytes([7; 32]);
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let request = PublishRequest {
            dir: corpus.to_path_buf(),
            title: Some("Bench pack".into()),
            genre: Some("bench".into()),
            tags: Some(vec![]),
            ..PublishRequest::default()
        };
        let idle_rss_kb = rss_kb().0;
        let started = Instant::now();
        let draft = publish::prepare(&identity, "bench", &store, &blobs, request, None, tx).await?;
        let outcome = publish::finish(&identity, &store, &blobs, draft, &|_| Ok(())).await?;
        let secs = started.elapsed().as_secs_f64();
        let _ = drain.await;
        if outcome.samples != files.len() {
            bail!("published {} of {} files: {:?}", outcome.samples, files.len(), outcome.skipped);
        }
        let audio_secs = store
            .manifest(&outcome.pack_id)?
            .context("the published manifest is missing")?
            .0
            .samples
            .iter()
            .map(|s| s.frames as f64 / s.sample_rate as f64)
            .sum();
        blobs.shutdown().await;
        Ok(Report {
            secs,
            files: files.len(),
            bytes: files.iter().map(|f| f.2).sum(),
            audio_secs,
            idle_rss_kb,
            hwm_kb: rss_kb().1,
        })
    })
}
