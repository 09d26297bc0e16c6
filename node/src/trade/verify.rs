//! Checking licenses: a token against who presents it, and a certificate against
//! a folder of files. Used by the gate, by the buyer on receipt, and offline by
//! `smpl license verify`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use smpl_protocol::certificate::CertifiedFile;
use smpl_protocol::collection;
use smpl_protocol::{BlobHash, Envelope, LicenseToken, NodeId, PackId, ProtocolError, Signed};

/// What a token must say besides being well signed by the pack's author (which
/// [`LicenseToken::open`] checks: the pack id derives from the seller's key).
#[derive(Clone, Debug, Default)]
pub struct Expect {
    pub buyer: Option<NodeId>,
    pub pack: Option<PackId>,
    pub content: Option<BlobHash>,
}

#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    #[error("the license token is not valid: {0}")]
    Token(#[from] ProtocolError),
    #[error("the license was issued to node {actual}, not to {expected}")]
    WrongBuyer { expected: NodeId, actual: NodeId },
    #[error("the license is for pack {actual}, not for pack {expected}")]
    WrongPack { expected: PackId, actual: PackId },
    #[error("the license covers content {actual}, not {expected} (another version of the pack)")]
    WrongContent { expected: BlobHash, actual: BlobHash },
    #[error("the certificate's file list does not add up to the licensed content {content}; it was edited")]
    FileList { content: BlobHash },
    #[error("the certificate lists no files, so a folder cannot be checked against it")]
    NoFileList,
    #[error("{dir}: {problem}")]
    Files { dir: PathBuf, problem: String },
}

/// Opens a token envelope and checks it against `expect`.
pub fn check_token(bytes: &[u8], expect: &Expect) -> Result<(LicenseToken, Envelope), LicenseError> {
    let (token, envelope) = LicenseToken::open(bytes)?;
    if let Some(expected) = expect.buyer
        && token.buyer != expected
    {
        return Err(LicenseError::WrongBuyer { expected, actual: token.buyer });
    }
    if let Some(expected) = expect.pack
        && token.pack_id != expected
    {
        return Err(LicenseError::WrongPack { expected, actual: token.pack_id });
    }
    if let Some(expected) = expect.content
        && token.content != expected
    {
        return Err(LicenseError::WrongContent { expected, actual: token.content });
    }
    Ok((token, envelope))
}

/// The pack content hash (the iroh-blobs `Collection` root) of these files, in
/// this order: what a license token signs (see [`smpl_protocol::collection`]).
pub fn content_of(files: &[CertifiedFile]) -> BlobHash {
    collection::content_hash(files.iter().map(|f| (&f.name, f.hash)))
}

/// What [`check_files`] found: the licensed files present (by their names in
/// the pack) and how many the licence lists.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FilesFound {
    pub found: Vec<String>,
    pub licensed: usize,
}

impl FilesFound {
    /// Every licensed file is there.
    pub fn complete(&self) -> bool {
        self.found.len() == self.licensed
    }
}

/// Checks that `path` holds only licensed files: a single file, or a folder
/// (a pack folder, or a project copy with some of them, renamed or not) whose
/// every file is one of the licensed files by size and BLAKE3 hash, apart from
/// the files DAWs and file managers put beside audio ([`is_sidecar`]). At least
/// one licensed file must be there. `files` must already be known to match the
/// token (see [`content_of`]).
pub fn check_files(path: &Path, files: &[CertifiedFile]) -> Result<FilesFound, LicenseError> {
    let problem = |problem: String| LicenseError::Files { dir: path.to_path_buf(), problem };
    if files.is_empty() {
        return Err(LicenseError::NoFileList);
    }
    let by_hash: HashMap<(BlobHash, u64), &str> =
        files.iter().map(|f| ((f.hash, f.size), f.name.as_str())).collect();
    let mut here = Vec::new();
    if path.is_dir() {
        walk(path, Path::new(""), &mut |relative| {
            if !is_sidecar(relative) {
                here.push(relative.to_path_buf());
            }
        })
        .map_err(|e| problem(format!("cannot list the folder: {e}")))?;
    } else {
        here.push(PathBuf::new());
    }
    here.sort();
    let mut found = HashSet::new();
    let mut extra = Vec::new();
    for relative in &here {
        let full = if relative.as_os_str().is_empty() { path.to_path_buf() } else { path.join(relative) };
        let (hash, size) =
            hash_file(&full).map_err(|e| problem(format!("cannot read {}: {e}", full.display())))?;
        match by_hash.get(&(hash, size)) {
            Some(name) => {
                found.insert(name.to_string());
            }
            None => extra.push(if relative.as_os_str().is_empty() {
                full.display().to_string()
            } else {
                relative.display().to_string()
            }),
        }
    }
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(5).map(String::as_str).collect();
        return Err(problem(format!(
            "{} here {} not covered by the license: {}",
            if extra.len() == 1 { "1 file".to_string() } else { format!("{} files", extra.len()) },
            if extra.len() == 1 { "is" } else { "are" },
            shown.join(", ")
        )));
    }
    if found.is_empty() {
        return Err(problem("no licensed file is here".into()));
    }
    let mut found: Vec<String> = found.into_iter().collect();
    found.sort();
    Ok(FilesFound { found, licensed: files.len() })
}

/// BLAKE3 and length of a file.
fn hash_file(path: &Path) -> std::io::Result<(BlobHash, u64)> {
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((BlobHash(*hasher.finalize().as_bytes()), size))
}

/// Files that DAWs and file managers write beside audio on their own: Ableton's
/// analysis files, Reaper's and Audition's peak files, macOS and Windows folder
/// metadata. They are not part of a pack, and their presence proves nothing.
pub fn is_sidecar(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), ".ds_store" | "thumbs.db" | "desktop.ini")
        || name.starts_with("._")
        || [".asd", ".reapeaks", ".pkf"].iter().any(|ext| lower.ends_with(ext))
}

/// Calls `found` with the path (relative to `root`) of every file under `root`.
fn walk(root: &Path, relative: &Path, found: &mut dyn FnMut(&Path)) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            walk(root, &path, found)?;
        } else {
            found(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daw_sidecar_files_are_ignored_and_anything_else_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"RIFF not really audio, but licensed bytes".to_vec();
        std::fs::create_dir_all(dir.path().join("Kicks")).unwrap();
        std::fs::write(dir.path().join("Kicks/Kick.wav"), &bytes).unwrap();
        let files = vec![CertifiedFile {
            name: "Kicks/Kick.wav".into(),
            size: bytes.len() as u64,
            hash: BlobHash(*blake3::hash(&bytes).as_bytes()),
        }];
        for sidecar in
            ["Kicks/Kick.wav.asd", ".DS_Store", "Kicks/._Kick.wav", "Kick.wav.reapeaks", "Thumbs.db"]
        {
            std::fs::write(dir.path().join(sidecar), b"x").unwrap();
        }
        assert!(check_files(dir.path(), &files).unwrap().complete());
        std::fs::write(dir.path().join("Kicks/Snare.wav"), b"y").unwrap();
        let err = check_files(dir.path(), &files).unwrap_err().to_string();
        assert!(err.contains("1 file here is not covered") && err.contains("Snare.wav"), "{err}");
    }

    #[test]
    fn a_single_file_or_a_renamed_subset_is_checked_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let licensed: Vec<(&str, &[u8])> =
            vec![("Kick.wav", b"kick bytes"), ("Loops/Groove.wav", b"groove bytes")];
        let files: Vec<CertifiedFile> = licensed
            .iter()
            .map(|(name, bytes)| CertifiedFile {
                name: name.to_string(),
                size: bytes.len() as u64,
                hash: BlobHash(*blake3::hash(bytes).as_bytes()),
            })
            .collect();
        let project = dir.path().join("My Song/Samples");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("kick (copy).wav"), b"kick bytes").unwrap();
        let found = check_files(&project, &files).unwrap();
        assert_eq!((found.found.clone(), found.complete()), (vec!["Kick.wav".to_string()], false));
        let single = check_files(&project.join("kick (copy).wav"), &files).unwrap();
        assert_eq!(single.found, ["Kick.wav"]);
        std::fs::write(project.join("edited.wav"), b"kick bytes, edited").unwrap();
        assert!(check_files(&project.join("edited.wav"), &files).is_err());
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(check_files(&empty, &files).unwrap_err().to_string().contains("no licensed file"));
    }
}
