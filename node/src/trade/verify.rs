//! Checking licenses: a token against who presents it, and a certificate against
//! a folder of files. Used by the gate, by the buyer on receipt, and offline by
//! `smpl license verify`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use smpl_protocol::certificate::CertifiedFile;
use smpl_protocol::collection;
use smpl_protocol::{BlobHash, Envelope, LicenseToken, NodeId, PackId, ProtocolError, Signed};

use crate::transfer::relative_path;

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

/// Checks that `dir` holds exactly the licensed files: each listed file at its
/// place with its size and BLAKE3 hash, and nothing else but the files DAWs and
/// file managers put beside audio ([`is_sidecar`]). `files` must already be known
/// to match the token (see [`content_of`]).
pub fn check_files(dir: &Path, files: &[CertifiedFile]) -> Result<(), LicenseError> {
    let problem = |problem: String| LicenseError::Files { dir: dir.to_path_buf(), problem };
    if files.is_empty() {
        return Err(LicenseError::NoFileList);
    }
    let mut expected = HashSet::new();
    for file in files {
        let relative = relative_path(&file.name).map_err(|e| problem(e.to_string()))?;
        let path = dir.join(&relative);
        let mut handle = std::fs::File::open(&path)
            .map_err(|e| problem(format!("licensed file {} cannot be read: {e}", relative.display())))?;
        let mut hasher = blake3::Hasher::new();
        let size = std::io::copy(&mut handle, &mut hasher)
            .map_err(|e| problem(format!("reading {} failed: {e}", relative.display())))?;
        if size != file.size || BlobHash(*hasher.finalize().as_bytes()) != file.hash {
            return Err(problem(format!(
                "{} is not the licensed file ({size} bytes here, {} licensed, or other bytes)",
                relative.display(),
                file.size
            )));
        }
        expected.insert(relative);
    }
    let mut extra = Vec::new();
    walk(dir, Path::new(""), &mut |relative| {
        if !expected.contains(relative) && !is_sidecar(relative) {
            extra.push(relative.display().to_string());
        }
    })
    .map_err(|e| problem(format!("cannot list the folder: {e}")))?;
    if !extra.is_empty() {
        extra.sort();
        let shown: Vec<&str> = extra.iter().take(5).map(String::as_str).collect();
        return Err(problem(format!(
            "{} file(s) here are not covered by the license: {}",
            extra.len(),
            shown.join(", ")
        )));
    }
    Ok(())
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
        check_files(dir.path(), &files).unwrap();
        std::fs::write(dir.path().join("Kicks/Snare.wav"), b"y").unwrap();
        let err = check_files(dir.path(), &files).unwrap_err().to_string();
        assert!(err.contains("1 file(s)") && err.contains("Snare.wav"), "{err}");
    }
}
