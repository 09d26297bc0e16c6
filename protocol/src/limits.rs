//! Validation limits, part of the wire spec.
//!
//! Body sizes ([`MAX_MANIFEST_BYTES`], [`MAX_LICENSE_BYTES`], [`MAX_SMALL_BODY_BYTES`])
//! are checked from the envelope header and the envelope length, before the signature
//! is checked and before any JSON is parsed. Counts, lengths and ranges are checked
//! right after decoding, before a message is accepted; a body that breaks one is
//! refused as a whole ([`ProtocolError::Invalid`](crate::ProtocolError::Invalid)),
//! never trimmed. Lengths of text are in UTF-8 bytes.

/// Bytes of an envelope before its body (magic, version, kind, key, signature, length).
pub const ENVELOPE_HEADER_BYTES: usize = 4 + 1 + 1 + 32 + 64 + 4;
/// The largest envelope of any kind; longer input is refused before anything else.
pub const MAX_ENVELOPE_BYTES: usize = ENVELOPE_HEADER_BYTES + MAX_MANIFEST_BYTES;
/// Largest manifest body (JSON) in bytes.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest license token body in bytes.
pub const MAX_LICENSE_BYTES: usize = 16 * 1024;
/// Largest retraction or purchase request body in bytes.
pub const MAX_SMALL_BODY_BYTES: usize = 4 * 1024;
/// Most samples in one pack.
pub const MAX_SAMPLES: usize = 4096;
/// Longest pack title, genre, author name or license name, in bytes.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest description or custom license text, in bytes.
pub const MAX_LONG_TEXT: usize = 8 * 1024;
/// Longest slug, in bytes.
pub const MAX_SLUG: usize = 100;
/// Longest sample file name (a relative path with `/`), in bytes.
pub const MAX_FILE_NAME: usize = 255;
/// Most tags on a pack or a sample.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in bytes.
pub const MAX_TAG: usize = 40;
/// Most points in a sample's waveform.
pub const MAX_WAVEFORM_POINTS: usize = 256;
/// Largest preview clip a node fetches or serves for audition, in bytes. A manifest
/// names its previews by hash only; a reader stops fetching past this size.
pub const MAX_PREVIEW_BYTES: u64 = 512 * 1024;
/// Longest currency code.
pub const MAX_CURRENCY: usize = 8;
/// Longest payment reference, in bytes.
pub const MAX_PAYMENT_REF: usize = 200;
/// Highest sample rate of a sample entry, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 768_000;
/// Most channels of a sample entry.
pub const MAX_CHANNELS: u16 = 64;
/// Lowest tempo a sample entry may state, in BPM.
pub const MIN_BPM: f32 = 20.0;
/// Highest tempo a sample entry may state, in BPM.
pub const MAX_BPM: f32 = 400.0;
