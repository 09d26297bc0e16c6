//! Writing a file so that readers see the old contents or the new, never a part:
//! the bytes go to a temporary file of a name of its own next to the target,
//! which is synced and renamed over it, and then the folder is synced too, so the
//! new file survives a crash once the call returns.

use std::io::Write;
use std::path::{Path, PathBuf};

/// File modes (before the umask) for [`write_atomic`].
pub mod mode {
    /// Secrets: the owner only.
    pub const PRIVATE: u32 = 0o600;
    /// Readable by all, writable by the owner, whatever the umask allows more.
    pub const SHARED: u32 = 0o644;
    /// What a plain `File::create` asks for: the umask decides.
    pub const DEFAULT: u32 = 0o666;
}

/// A step of [`write_atomic`] that failed: what it did, on which path, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct WriteError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `bytes` to `path` atomically and durably, creating its folder where
/// missing; a new file gets `mode` (see [`mode`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let fail = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError { action, path, source }
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail("create", dir))?;
    // A name of its own, so two writers of one file cannot meet.
    let temp = path.with_extension(format!("{}.tmp", u64::from_be_bytes(super::random())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temp).map_err(fail("create", &temp))?;
    let written = file
        .write_all(bytes)
        .map_err(fail("write", &temp))
        .and_then(|()| file.sync_all().map_err(fail("sync", &temp)));
    drop(file);
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path).map_err(fail("rename", path))) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(fail("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("file.json");
        write_atomic(&path, b"first", mode::DEFAULT).unwrap();
        write_atomic(&path, b"second", mode::DEFAULT).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["file.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_atomic(&path, b"key", mode::PRIVATE).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
