//! Where the index's files live: tantivy's memory-mapped directory, with commits
//! that do not wait for the disk.
//!
//! tantivy syncs every file of a commit and the folder before the commit returns.
//! When the disk stalls (a shared disk under load took 10 to 40 s for one 4 KB
//! fsync), every commit waits that long, and so does a listing that has to be
//! searchable now: the node's own publish, a listing from an author it has dealt
//! with. The index is derived from the store and the store keeps the index queue,
//! so the index does not need to be durable on its own; it needs to be *correct*
//! after any stop:
//!
//! - A crash of the process loses nothing: what it wrote is in the kernel's page
//!   cache, and reaches the disk without it.
//! - A stop of the machine (power lost, the kernel crashed) can lose writes that
//!   were not synced, in any order. The index holds a marker with the boot id
//!   while it has unsynced writes; an index that finds the marker of another boot
//!   at its next open is wiped and rebuilt from the store ([`Index::needs_rebuild`]).
//! - [`Index::close`] syncs every file and removes the marker.
//!
//! [`Index::needs_rebuild`]: crate::Index::needs_rebuild
//! [`Index::close`]: crate::Index::close

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};

/// The marker of an index with writes not yet synced; it holds the boot id.
pub(crate) const UNSYNCED_FILE: &str = "unsynced";

/// tantivy's [`MmapDirectory`] for reading, locking and deleting; its own writes,
/// which are not synced (see the module's documentation).
#[derive(Clone, Debug)]
pub(crate) struct UnsyncedDirectory {
    inner: MmapDirectory,
    root: PathBuf,
}

impl UnsyncedDirectory {
    pub(crate) fn new(inner: MmapDirectory, root: &Path) -> UnsyncedDirectory {
        UnsyncedDirectory { inner, root: root.to_path_buf() }
    }
}

/// A file written without a sync at its end.
struct Unsynced(File);

impl Write for Unsynced {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl TerminatingWrite for Unsynced {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.0.flush()
    }
}

impl Directory for UnsyncedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let file =
            OpenOptions::new().write(true).create_new(true).open(self.root.join(path)).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    OpenWriteError::FileAlreadyExists(path.to_path_buf())
                } else {
                    OpenWriteError::wrap_io_error(e, path.to_path_buf())
                }
            })?;
        Ok(BufWriter::new(Box::new(Unsynced(file))))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    /// Written beside and renamed over: a reader sees the old content or the new.
    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let target = self.root.join(path);
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = target.with_file_name(name);
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, &target)
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn sync_directory(&self) -> io::Result<()> {
        Ok(())
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

/// This boot of the machine, where the system says (Linux).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// Whether the index in `dir` may have lost writes: it was left with writes not
/// synced, and the machine stopped since (or this system cannot tell).
pub(crate) fn lost_writes(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join(UNSYNCED_FILE)) {
        Ok(marked) => boot_id().is_none_or(|now| marked.trim() != now),
        Err(_) => false,
    }
}

/// Marks the index in `dir` as holding unsynced writes from this boot, durably,
/// before its first write.
pub(crate) fn mark_unsynced(dir: &Path) -> io::Result<()> {
    let id = boot_id().unwrap_or_default();
    let path = dir.join(UNSYNCED_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|marked| !id.is_empty() && marked.trim() == id) {
        return Ok(());
    }
    let tmp = dir.join(format!("{UNSYNCED_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_folder(dir)
}

/// Syncs every file in `dir`, then removes the marker.
pub(crate) fn sync_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != UNSYNCED_FILE {
            match File::open(entry.path()) {
                Ok(file) => file.sync_all()?,
                // Deleted by a merge meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    sync_folder(dir)?;
    match std::fs::remove_file(dir.join(UNSYNCED_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    sync_folder(dir)
}

fn sync_folder(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}
