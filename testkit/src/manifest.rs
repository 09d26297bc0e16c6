//! Manifests and sample entries for tests: small, valid, and the same every run.
//!
//! [`sample`] and [`manifest`] give neutral values; a test changes what it is about
//! with struct update syntax (`SampleEntry { hash, ..sample("kick.wav") }`), by
//! assigning fields, or with the [`SampleExt`] methods:
//!
//! ```
//! use smpl_testkit::manifest::{SampleExt, manifest, node, sample, usd};
//!
//! let mut pack = manifest(node(1), "loops", 1, vec![sample("Chord_Loop.wav").looped(120.0).in_key(9, true)]);
//! pack.price = usd(499);
//! assert!(pack.check().is_ok());
//! ```

use smpl_protocol::{
    AudioFormat, BlobHash, Identity, Key, LicenseTerms, Manifest, Mode, NodeId, PackId, Price, SampleEntry,
    SampleKind, Source, Tempo,
};

/// The identity whose secret key is `[n; 32]`: a real key pair that signs.
pub fn identity(n: u8) -> Identity {
    Identity::from_secret_bytes([n; 32])
}

/// The node id `[n; 32]`: names an author in an index, but no key signs for it.
pub fn node(n: u8) -> NodeId {
    NodeId([n; 32])
}

/// The blob hash `[n; 32]`.
pub fn hash(n: u8) -> BlobHash {
    BlobHash([n; 32])
}

/// A price of `cents` US cents.
pub fn usd(cents: u64) -> Option<Price> {
    Some(Price { amount_minor: cents, currency: "USD".into() })
}

/// A one-second stereo 16-bit 44.1 kHz WAV one-shot named `name`, with no analysis
/// (no loudness, tempo, key, tags, waveform, preview or descriptor).
pub fn sample(name: &str) -> SampleEntry {
    SampleEntry {
        name: name.to_string(),
        hash: hash(1),
        size: 1000,
        format: AudioFormat::Wav,
        frames: 44_100,
        sample_rate: 44_100,
        channels: 2,
        bit_depth: Some(16),
        peak_dbfs: -1.0,
        loudness_lufs: None,
        kind: SampleKind::OneShot,
        tempo: None,
        key: None,
        note: None,
        tags: Vec::new(),
        waveform: Vec::new(),
        preview: None,
        descriptor: None,
    }
}

/// Chained changes to a [`SampleEntry`], for the fields tests vary most.
pub trait SampleExt {
    /// A loop at `bpm`, as detected with confidence 0.9.
    fn looped(self, bpm: f32) -> Self;
    /// In the key of `tonic` (0 = C … 11 = B), minor or major, as stated by the author.
    fn in_key(self, tonic: u8, minor: bool) -> Self;
    /// With exactly these tags.
    fn tagged(self, tags: &[&str]) -> Self;
}

impl SampleExt for SampleEntry {
    fn looped(mut self, bpm: f32) -> Self {
        self.kind = SampleKind::Loop;
        self.tempo = Some(Tempo { bpm, source: Source::Detected, confidence: 0.9 });
        self
    }

    fn in_key(mut self, tonic: u8, minor: bool) -> Self {
        let mode = if minor { Mode::Minor } else { Mode::Major };
        self.key = Some(Key { tonic, mode, source: Source::Stated });
        self
    }

    fn tagged(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }
}

/// A free, royalty-free techno pack of `samples` by `author` at `seq`: titled
/// "Pack {slug}", by "producer{first byte of the author}", created at
/// `1_700_000_000 + seq`, its content hash `[2; 32]`.
pub fn manifest(author: NodeId, slug: &str, seq: u64, samples: Vec<SampleEntry>) -> Manifest {
    Manifest {
        pack_id: PackId::derive(&author, slug),
        author,
        author_name: format!("producer{}", author.0[0]),
        slug: slug.to_string(),
        seq,
        title: format!("Pack {slug}"),
        description: String::new(),
        genre: "techno".into(),
        tags: Vec::new(),
        price: None,
        license: LicenseTerms::Named("royalty-free".into()),
        created_at: 1_700_000_000 + seq,
        content: hash(2),
        cover: None,
        licenses_from: None,
        payment: None,
        samples,
    }
}
