//! Fixtures and proptest strategies shared by the integration tests.
#![allow(dead_code)]

use proptest::prelude::*;
use smpl_protocol::*;
pub use smpl_testkit::envelope::seal_unchecked;
pub use smpl_testkit::manifest::hash;

/// The seller's / author's fixed identity in golden vectors.
pub const SELLER_SECRET: [u8; 32] = [7; 32];
/// The buyer's fixed identity in golden vectors.
pub const BUYER_SECRET: [u8; 32] = [9; 32];

pub fn seller() -> Identity {
    Identity::from_secret_bytes(SELLER_SECRET)
}

pub fn buyer() -> Identity {
    Identity::from_secret_bytes(BUYER_SECRET)
}

pub fn sample_loop() -> SampleEntry {
    SampleEntry {
        name: "loops/dusty-808-loop-120.wav".into(),
        hash: hash(0x11),
        size: 1_058_444,
        format: AudioFormat::Wav,
        frames: 264_600,
        sample_rate: 44_100,
        channels: 2,
        bit_depth: Some(24),
        peak_dbfs: -0.5,
        loudness_lufs: Some(-9.25),
        kind: SampleKind::Loop,
        tempo: Some(Tempo { bpm: 120.0, source: Source::Detected, confidence: 0.875 }),
        key: Some(Key { tonic: 9, mode: Mode::Minor, source: Source::Stated }),
        note: None,
        tags: vec!["808".into(), "dusty".into()],
        waveform: vec![0, 64, 255, 128, 7],
        preview: Some(hash(0x12)),
        descriptor: None,
    }
}

pub fn sample_one_shot() -> SampleEntry {
    SampleEntry {
        name: "kick.flac".into(),
        hash: hash(0x21),
        size: 40_000,
        format: AudioFormat::Flac,
        frames: 22_050,
        sample_rate: 44_100,
        channels: 1,
        bit_depth: Some(16),
        peak_dbfs: -1.0,
        loudness_lufs: None,
        kind: SampleKind::OneShot,
        tempo: None,
        key: None,
        note: None,
        tags: vec![],
        waveform: vec![255, 12],
        preview: None,
        descriptor: None,
    }
}

/// A small valid paid manifest by [`seller`].
pub fn manifest() -> Manifest {
    let author = seller().node_id();
    Manifest {
        pack_id: PackId::derive(&author, "dusty-808s"),
        author,
        author_name: "Seven".into(),
        slug: "dusty-808s".into(),
        seq: 3,
        title: "Dusty 808s".into(),
        description: "Kicks and loops.\nRecorded on tape.".into(),
        genre: "hip-hop".into(),
        tags: vec!["808".into(), "lo-fi".into()],
        price: Some(Price { amount_minor: 499, currency: "USD".into() }),
        license: LicenseTerms::Named("royalty-free".into()),
        created_at: 1_700_000_000,
        content: hash(0xc0),
        cover: None,
        licenses_from: None,
        payment: None,
        samples: vec![sample_loop(), sample_one_shot()],
    }
}

pub fn retraction() -> Retraction {
    let author = seller().node_id();
    Retraction {
        pack_id: PackId::derive(&author, "dusty-808s"),
        author,
        slug: "dusty-808s".into(),
        seq: 3,
        retracted_at: 1_700_000_600,
    }
}

pub fn purchase_request() -> PurchaseRequest {
    PurchaseRequest {
        buyer_name: None,
        pack_id: PackId::derive(&seller().node_id(), "dusty-808s"),
        seq: 3,
        buyer: buyer().node_id(),
        seller: seller().node_id(),
        price: Some(Price { amount_minor: 499, currency: "USD".into() }),
        payment_ref: Some("inv-0042".into()),
        nonce: 0x0123_4567_89ab_cdef,
        created_at: 1_700_000_100,
    }
}

pub fn license_token() -> LicenseToken {
    LicenseToken {
        license_id: LicenseId([0x5a; 16]),
        pack_id: PackId::derive(&seller().node_id(), "dusty-808s"),
        slug: "dusty-808s".into(),
        seq: 3,
        content: hash(0xc0),
        seller: seller().node_id(),
        buyer: buyer().node_id(),
        price: Some(Price { amount_minor: 499, currency: "USD".into() }),
        terms: LicenseTerms::Named("royalty-free".into()),
        issued_at: 1_700_000_200,
    }
}

/// Asserts that both signing and opening `value` fail with `Invalid` mentioning `needle`.
pub fn assert_invalid<T: Signed + std::fmt::Debug>(identity: &Identity, value: &T, needle: &str) {
    match value.sign(identity) {
        Err(ProtocolError::Invalid { kind, reason }) => {
            assert_eq!(kind, T::KIND);
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("sign of {value:?} gave {other:?}, expected Invalid"),
    }
    let envelope = seal_unchecked(identity, value);
    match T::open(envelope.as_bytes()) {
        Err(ProtocolError::Invalid { kind, reason }) => {
            assert_eq!(kind, T::KIND);
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("open gave {other:?}, expected Invalid"),
    }
}

// ---- proptest strategies: arbitrary valid values ----

pub fn identity() -> impl Strategy<Value = Identity> {
    any::<[u8; 32]>().prop_map(Identity::from_secret_bytes)
}

pub fn blob_hash() -> impl Strategy<Value = BlobHash> {
    any::<[u8; 32]>().prop_map(BlobHash)
}

pub fn node_id() -> impl Strategy<Value = NodeId> {
    identity().prop_map(|i| i.node_id())
}

/// Short text: starts with a visible character, then any non-control characters.
pub fn short_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][\\PC]{0,30}"
}

pub fn long_text() -> impl Strategy<Value = String> {
    "[\\PC\n\t]{0,300}"
}

pub fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z0-9][a-z0-9 -]{0,20}", 0..6)
}

pub fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9-]{0,40}"
}

pub fn price() -> impl Strategy<Value = Option<Price>> {
    prop::option::of(
        (1u64..=u64::MAX, "[A-Z]{1,8}").prop_map(|(amount_minor, currency)| Price { amount_minor, currency }),
    )
}

pub fn terms() -> impl Strategy<Value = LicenseTerms> {
    prop_oneof![short_text().prop_map(LicenseTerms::Named), long_text().prop_map(LicenseTerms::Custom),]
}

pub fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Stated), Just(Source::Detected), Just(Source::Name)]
}

pub fn sample(name: String) -> impl Strategy<Value = SampleEntry> {
    let format = prop_oneof![
        Just(AudioFormat::Wav),
        Just(AudioFormat::Flac),
        Just(AudioFormat::Aiff),
        Just(AudioFormat::Ogg),
        Just(AudioFormat::Mp3),
    ];
    let kind = prop_oneof![Just(SampleKind::OneShot), Just(SampleKind::Loop)];
    let tempo = prop::option::of(
        (20.0f32..=400.0, source(), 0.0f32..=1.0).prop_map(|(bpm, source, confidence)| Tempo {
            bpm,
            source,
            confidence,
        }),
    );
    let mode = prop_oneof![Just(Mode::Major), Just(Mode::Minor)];
    let key = prop::option::of((0u8..12, mode, source()).prop_map(|(tonic, mode, source)| Key {
        tonic,
        mode,
        source,
    }));
    let note = prop::option::of(
        (0u8..12, prop::option::of(-1i8..=9), source()).prop_map(|(pitch_class, octave, source)| Note {
            pitch_class,
            octave,
            source,
        }),
    );
    (
        (
            blob_hash(),
            any::<u64>(),
            format,
            any::<u64>(),
            1u32..=768_000,
            1u16..=64,
            prop::option::of(1u16..=64),
            -200.0f32..=0.0,
            prop::option::of(-70.0f32..=0.0),
        ),
        (
            kind,
            tempo,
            (key, note),
            tags(),
            prop::collection::vec(any::<u8>(), 0..=256),
            prop::option::of(blob_hash()),
            prop::option::of(any::<[i8; 32]>()),
        ),
    )
        .prop_map(
            move |(
                (hash, size, format, frames, sample_rate, channels, bit_depth, peak, lufs),
                (kind, tempo, (key, note), tags, waveform, preview, descriptor),
            )| SampleEntry {
                name: name.clone(),
                hash,
                size,
                format,
                frames,
                sample_rate,
                channels,
                bit_depth,
                peak_dbfs: peak,
                loudness_lufs: lufs,
                kind,
                tempo,
                key,
                note,
                tags,
                waveform,
                preview,
                descriptor: descriptor.map(Descriptor),
            },
        )
}

/// Unique file names; folders never end in an extension, so no name is also a folder.
pub fn file_names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("([a-z0-9 _-]{1,8}/){0,2}[a-zA-Z0-9 ()_-]{1,12}\\.(wav|flac)", 1..5)
        .prop_map(|set| set.into_iter().collect())
}

pub fn manifest_by(author: Identity) -> impl Strategy<Value = Manifest> {
    let author = author.node_id();
    let samples = file_names().prop_flat_map(|names| names.into_iter().map(sample).collect::<Vec<_>>());
    (
        (short_text(), slug(), any::<u64>(), short_text(), long_text()),
        (short_text(), tags(), price(), terms(), any::<u64>()),
        (blob_hash(), prop::option::of(blob_hash()), samples),
    )
        .prop_map(
            move |(
                (author_name, slug, seq, title, description),
                (genre, tags, price, license, created_at),
                (content, cover, samples),
            )| Manifest {
                pack_id: PackId::derive(&author, &slug),
                author,
                author_name,
                slug,
                seq,
                title,
                description,
                genre,
                tags,
                price,
                license,
                created_at,
                content,
                cover,
                samples,
                licenses_from: None,
                payment: None,
            },
        )
}

/// A valid manifest and the identity that signs it.
pub fn signed_manifest() -> impl Strategy<Value = (Identity, Manifest)> {
    identity().prop_flat_map(|id| (Just(id.clone()), manifest_by(id)))
}

pub fn signed_retraction() -> impl Strategy<Value = (Identity, Retraction)> {
    (identity(), slug(), any::<u64>(), any::<u64>()).prop_map(|(id, slug, seq, retracted_at)| {
        let author = id.node_id();
        let r = Retraction { pack_id: PackId::derive(&author, &slug), author, slug, seq, retracted_at };
        (id, r)
    })
}

pub fn signed_purchase_request() -> impl Strategy<Value = (Identity, PurchaseRequest)> {
    (
        identity(),
        any::<[u8; 16]>(),
        any::<u64>(),
        node_id(),
        price(),
        prop::option::of("[\\PC]{0,40}"),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(id, pack, seq, seller, price, payment_ref, nonce, created_at)| {
            let r = PurchaseRequest {
                buyer_name: None,
                pack_id: PackId(pack),
                seq,
                buyer: id.node_id(),
                seller,
                price,
                payment_ref,
                nonce,
                created_at,
            };
            (id, r)
        })
}

pub fn signed_license_token() -> impl Strategy<Value = (Identity, LicenseToken)> {
    (
        identity(),
        any::<[u8; 16]>(),
        slug(),
        any::<u64>(),
        blob_hash(),
        node_id(),
        price(),
        terms(),
        any::<u64>(),
    )
        .prop_map(|(id, license, slug, seq, content, buyer, price, terms, issued_at)| {
            let t = LicenseToken {
                license_id: LicenseId(license),
                pack_id: PackId::derive(&id.node_id(), &slug),
                slug,
                seq,
                content,
                seller: id.node_id(),
                buyer,
                price,
                terms,
                issued_at,
            };
            (id, t)
        })
}
