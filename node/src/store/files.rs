//! Listing envelopes in files of their own, beside the sled database.
//!
//! sled keeps every page it writes in memory for the life of the process and does
//! not give back the disk of values it overwrote or removed, so a node that takes
//! in a large catalogue, or a flood it evicts, grows in both without bound. The
//! envelopes are nearly all of those bytes. Here each stored listing version is one
//! file, `<first two hex digits of the pack id>/<pack id>-<seq>`, holding the
//! envelope as the store encodes it (zstd when that is smaller): removing a listing
//! gives its disk back at once, and reading one goes through the kernel's page
//! cache, which the kernel can take back, instead of the node's heap.
//!
//! A file is written under a temporary name and renamed into place, so a reader
//! never sees half of one. sled's `manifests/v1` says which version is current;
//! [`Store::open`](super::Store::open) removes files it does not name (left by a
//! crash between the file and the transaction) and forgets listings whose file is
//! gone or empty (a crash before an unsynced file reached the disk), so sync
//! fetches them again.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use smpl_protocol::PackId;

/// Prefix of files being written; they are never read, and removed at open.
const TEMPORARY: &str = ".tmp-";

pub(super) struct EnvelopeFiles {
    dir: PathBuf,
    /// Makes temporary names unique between threads writing the same version.
    next_temporary: AtomicU64,
}

/// A file found in the directory: the listing version it holds, if its name is one.
pub(super) struct Found {
    pub path: PathBuf,
    pub version: Option<(PackId, u64)>,
    pub len: u64,
}

impl EnvelopeFiles {
    pub fn open(dir: &Path) -> io::Result<EnvelopeFiles> {
        fs::create_dir_all(dir)?;
        Ok(EnvelopeFiles { dir: dir.to_path_buf(), next_temporary: AtomicU64::new(0) })
    }

    fn shard(&self, pack: &PackId) -> PathBuf {
        self.dir.join(format!("{:02x}", pack.0[0]))
    }

    fn path(&self, pack: &PackId, seq: u64) -> PathBuf {
        self.shard(pack).join(format!("{pack}-{seq}"))
    }

    /// Writes version `seq` of `pack`. `durable` syncs the file and its directory
    /// before returning.
    pub fn write(&self, pack: &PackId, seq: u64, body: &[u8], durable: bool) -> io::Result<()> {
        let shard = self.shard(pack);
        fs::create_dir_all(&shard)?;
        let n = self.next_temporary.fetch_add(1, Ordering::Relaxed);
        let temporary = shard.join(format!("{TEMPORARY}{pack}-{seq}-{}-{n}", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(body)?;
            if durable {
                file.sync_all()?;
            }
            fs::rename(&temporary, self.path(pack, seq))?;
            if durable {
                fs::File::open(&shard)?.sync_all()?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    pub fn read(&self, pack: &PackId, seq: u64) -> io::Result<Vec<u8>> {
        fs::read(self.path(pack, seq))
    }

    /// Removes version `seq` of `pack`; a file already gone is not an error.
    pub fn remove(&self, pack: &PackId, seq: u64) {
        match fs::remove_file(self.path(pack, seq)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(%pack, seq, "could not remove a listing file: {e}"),
        }
    }

    /// Every file in the directory.
    pub fn list(&self) -> io::Result<Vec<Found>> {
        let mut found = Vec::new();
        for shard in fs::read_dir(&self.dir)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(shard.path())? {
                let file = file?;
                let name = file.file_name();
                let version = name.to_str().and_then(parse_name);
                found.push(Found { path: file.path(), version, len: file.metadata()?.len() });
            }
        }
        Ok(found)
    }
}

/// The listing version a file name holds: `<pack id>-<seq>`.
fn parse_name(name: &str) -> Option<(PackId, u64)> {
    if name.starts_with(TEMPORARY) {
        return None;
    }
    let (pack, seq) = name.split_once('-')?;
    Some((pack.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_written_whole_read_back_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnvelopeFiles::open(dir.path()).unwrap();
        let pack = PackId([0xab; 16]);
        files.write(&pack, 3, b"three", true).unwrap();
        files.write(&pack, 4, b"four", false).unwrap();
        assert_eq!(files.read(&pack, 3).unwrap(), b"three");
        files.remove(&pack, 3);
        files.remove(&pack, 3);
        assert_eq!(files.read(&pack, 3).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs::write(dir.path().join("ab").join(".tmp-left-by-a-crash"), b"x").unwrap();
        let mut listed: Vec<_> = files.list().unwrap().into_iter().map(|f| (f.version, f.len)).collect();
        listed.sort();
        assert_eq!(listed, [(None, 1), (Some((pack, 4)), 4)]);
    }
}
