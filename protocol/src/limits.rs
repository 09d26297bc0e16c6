//! Validation limits. Sizes are checked before parsing; counts and lengths right
//! after decoding, before a message is accepted.

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
/// Longest currency code.
pub const MAX_CURRENCY: usize = 8;
/// Longest payment reference, in bytes.
pub const MAX_PAYMENT_REF: usize = 200;
