//! Builders for manifests in tests.

#![allow(dead_code)]

use smpl_protocol::{
    AudioFormat, BlobHash, Key, LicenseTerms, Manifest, Mode, NodeId, PackId, Price, SampleEntry, SampleKind,
    Source, Tempo,
};

pub fn node(n: u8) -> NodeId {
    NodeId([n; 32])
}

pub fn sample(name: &str) -> SampleEntry {
    SampleEntry {
        name: name.to_string(),
        hash: BlobHash([1; 32]),
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
        tags: Vec::new(),
        waveform: Vec::new(),
        preview: None,
        descriptor: None,
    }
}

pub fn with_loop(mut s: SampleEntry, bpm: f32) -> SampleEntry {
    s.kind = SampleKind::Loop;
    s.tempo = Some(Tempo { bpm, source: Source::Detected, confidence: 0.9 });
    s
}

pub fn with_key(mut s: SampleEntry, tonic: u8, minor: bool) -> SampleEntry {
    s.key = Some(Key { tonic, mode: if minor { Mode::Minor } else { Mode::Major }, source: Source::Stated });
    s
}

pub fn with_tags(mut s: SampleEntry, tags: &[&str]) -> SampleEntry {
    s.tags = tags.iter().map(|t| t.to_string()).collect();
    s
}

pub fn price(minor: u64) -> Option<Price> {
    Some(Price { amount_minor: minor, currency: "USD".into() })
}

/// A manifest of `samples` by `author` with slug `slug`.
pub fn manifest(author: u8, slug: &str, seq: u64, samples: Vec<SampleEntry>) -> Manifest {
    let author = node(author);
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
        content: BlobHash([2; 32]),
        cover: None,
        samples,
    }
}
