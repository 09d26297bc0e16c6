//! The one error type of this crate.

use std::path::PathBuf;

/// What went wrong in an index operation, with the input it concerned.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index directory could not be read, created or wiped.
    #[error("index directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// tantivy refused to open or create the index.
    #[error("opening the search index in {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    /// Another process (or another `Index` in this one) holds the index writer.
    #[error("the search index in {path} is in use by another process (is another smpl node running?)")]
    Locked {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    /// Adding, deleting or committing documents failed; the batch was rolled back.
    #[error("indexing a batch of {ops} operations: {source}")]
    Write {
        ops: usize,
        #[source]
        source: tantivy::TantivyError,
    },
    /// Running a query failed.
    #[error("searching the index: {source}")]
    Search {
        #[source]
        source: tantivy::TantivyError,
    },
    /// A stored document could not be read back.
    #[error("stored document {doc} is corrupt: {reason}")]
    Corrupt { doc: String, reason: String },
    /// A query parameter is out of range or malformed.
    #[error("bad search {what} {input:?}: {reason}")]
    BadQuery { what: &'static str, input: String, reason: String },
    /// The sample a similarity search starts from is not in the index.
    #[error("no sample {sample:?} in pack {pack} (give its file name or a unique part of it)")]
    NoSample { pack: smpl_protocol::PackId, sample: String },
    #[error("{matches} samples of pack {pack} match {sample:?}; give more of the name")]
    AmbiguousSample { pack: smpl_protocol::PackId, sample: String, matches: usize },
    #[error(
        "sample {sample:?} of pack {pack} has no sound descriptor (silent, or published before descriptors)"
    )]
    NoDescriptor { pack: smpl_protocol::PackId, sample: String },
    /// The index was closed ([`Index::close`](crate::Index::close)).
    #[error("the search index is closed")]
    Closed,
    /// A thread panicked while holding the index writer.
    #[error("the index writer is unusable after a panic in another thread; reopen the index")]
    Poisoned,
}

impl IndexError {
    pub(crate) fn search(source: tantivy::TantivyError) -> IndexError {
        IndexError::Search { source }
    }

    pub(crate) fn bad(what: &'static str, input: impl ToString, reason: impl ToString) -> Self {
        IndexError::BadQuery { what, input: input.to_string(), reason: reason.to_string() }
    }
}
