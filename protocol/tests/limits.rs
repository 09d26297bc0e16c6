//! Size limits are enforced before any parsing; count, length and range limits right
//! after decoding, with a clear `Invalid` reason.

mod common;

use common::*;
use smpl_protocol::limits::*;
use smpl_protocol::*;

/// A raw envelope with an arbitrary (unsigned) body and a chosen declared length.
fn raw_envelope(kind: Kind, declared: u32, body: &[u8]) -> Vec<u8> {
    smpl_testkit::envelope::raw(kind, &seller().node_id(), &[0; 64], declared, body)
}

fn assert_too_large(result: Result<Envelope, ProtocolError>, what: &str) {
    match result {
        Err(ProtocolError::TooLarge { kind, len, max }) => {
            // A manifest one byte over its limit is also over the envelope limit.
            assert!(kind == what || kind == "envelope", "{kind} for {what}");
            assert!(len > max);
        }
        other => panic!("expected TooLarge for {what}, got {other:?}"),
    }
}

#[test]
fn five_mib_of_garbage_is_too_large_not_a_decode_error() {
    let garbage = vec![b'{'; 5 * 1024 * 1024];
    let bytes = raw_envelope(Kind::Manifest, garbage.len() as u32, &garbage);
    assert_too_large(Envelope::open(&bytes), "envelope");
    assert!(matches!(Manifest::open(&bytes), Err(ProtocolError::TooLarge { .. })));
}

#[test]
fn declared_or_actual_body_over_the_kind_limit_is_too_large() {
    for kind in Kind::ALL {
        let max = kind.max_body();
        let over = vec![0xffu8; max + 1];
        // Declared and actual both over: refused before the (invalid) signature.
        assert_too_large(Envelope::open(&raw_envelope(kind, over.len() as u32, &over)), kind.name());
        // Only the declared length is over.
        assert_too_large(Envelope::open(&raw_envelope(kind, (max + 1) as u32, b"{}")), kind.name());
        assert_too_large(Envelope::open(&raw_envelope(kind, u32::MAX, b"{}")), kind.name());
        // Only the actual length is over (a lying length field).
        if ENVELOPE_HEADER_BYTES + over.len() <= MAX_ENVELOPE_BYTES {
            assert_too_large(Envelope::open(&raw_envelope(kind, 2, &over)), kind.name());
        }
    }
}

#[test]
fn a_signed_body_at_the_limit_is_decoded_and_one_over_cannot_be_sealed() {
    // At the limit, the size check passes and the garbage reaches the JSON decoder.
    let at_limit = vec![b'x'; MAX_SMALL_BODY_BYTES];
    let envelope = Envelope::seal(&seller(), Kind::Retraction, &at_limit).unwrap();
    assert!(matches!(
        Retraction::open(envelope.as_bytes()),
        Err(ProtocolError::Decode { kind: Kind::Retraction, .. })
    ));
    let over = vec![b'x'; MAX_SMALL_BODY_BYTES + 1];
    assert!(matches!(
        Envelope::seal(&seller(), Kind::Retraction, &over),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn a_manifest_too_big_to_seal_is_refused_at_signing() {
    let mut m = manifest();
    let template = sample_loop();
    m.samples = (0..MAX_SAMPLES)
        .map(|i| SampleEntry {
            name: format!("{i:04}-{}", "n".repeat(200)),
            waveform: vec![200; MAX_WAVEFORM_POINTS],
            ..template.clone()
        })
        .collect();
    assert!(m.check().is_ok());
    assert!(matches!(m.sign(&seller()), Err(ProtocolError::TooLarge { .. })));
}

#[test]
fn manifest_counts_and_lengths() {
    let id = seller();
    let with = |f: &dyn Fn(&mut Manifest)| {
        let mut m = manifest();
        f(&mut m);
        m
    };

    assert_invalid(
        &id,
        &with(&|m| {
            let s = sample_one_shot();
            m.samples =
                (0..=MAX_SAMPLES).map(|i| SampleEntry { name: format!("{i}.wav"), ..s.clone() }).collect();
        }),
        "samples, over the limit",
    );
    assert_invalid(&id, &with(&|m| m.samples.clear()), "no samples");
    assert_invalid(
        &id,
        &with(&|m| m.tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect()),
        "tags, over the limit",
    );
    assert_invalid(
        &id,
        &with(&|m| m.samples[0].tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect()),
        "tags, over the limit",
    );
    assert_invalid(&id, &with(&|m| m.tags = vec!["t".repeat(MAX_TAG + 1)]), "tag is");
    assert_invalid(&id, &with(&|m| m.tags = vec![String::new()]), "empty tag");
    assert_invalid(&id, &with(&|m| m.title = "t".repeat(MAX_SHORT_TEXT + 1)), "title is");
    assert_invalid(&id, &with(&|m| m.title = "  ".into()), "title is empty");
    assert_invalid(&id, &with(&|m| m.title = "a\u{1b}[2J".into()), "control");
    assert_invalid(&id, &with(&|m| m.description = "d".repeat(MAX_LONG_TEXT + 1)), "description is");
    assert_invalid(&id, &with(&|m| m.author_name = "a".repeat(MAX_SHORT_TEXT + 1)), "author name");
    assert_invalid(&id, &with(&|m| m.genre = "g".repeat(MAX_SHORT_TEXT + 1)), "genre");
    assert_invalid(
        &id,
        &with(&|m| m.license = LicenseTerms::Custom("c".repeat(MAX_LONG_TEXT + 1))),
        "license text",
    );
    assert_invalid(&id, &with(&|m| m.samples[0].waveform = vec![1; MAX_WAVEFORM_POINTS + 1]), "waveform");
}

#[test]
fn manifest_file_names() {
    let id = seller();
    for bad in ["../x.wav", "/abs.wav", "a/../../x.wav", "a\\b.wav", "C:x.wav", "a//b.wav", ""] {
        let mut m = manifest();
        m.samples[0].name = bad.into();
        assert_invalid(&id, &m, "file name");
    }
    let mut m = manifest();
    m.samples[1].name = m.samples[0].name.clone();
    assert_invalid(&id, &m, "appears twice");
    let mut m = manifest();
    m.samples[1].name = "loops".into();
    assert_invalid(&id, &m, "both a file and a folder");
}

#[test]
fn manifest_slug_and_pack_id() {
    let id = seller();
    for bad in ["", "Dusty-808s", "dusty 808s", "dusty_808s", "../x"] {
        let mut m = manifest();
        m.slug = bad.into();
        m.pack_id = PackId::derive(&m.author, bad);
        assert_invalid(&id, &m, "slug");
    }
    let mut m = manifest();
    m.slug = "s".repeat(MAX_SLUG + 1);
    m.pack_id = PackId::derive(&m.author, &m.slug);
    assert_invalid(&id, &m, "slug");

    // A pack id that is not derived from this author and slug: someone else's pack.
    let mut m = manifest();
    m.pack_id = PackId::derive(&buyer().node_id(), &m.slug);
    assert_invalid(&id, &m, "does not derive");
    let mut m = manifest();
    m.slug = "other-pack".into();
    assert_invalid(&id, &m, "does not derive");

    let mut r = retraction();
    r.pack_id = PackId([0; 16]);
    assert_invalid(&id, &r, "does not derive");
    let mut r = retraction();
    r.slug = "Bad Slug".into();
    assert_invalid(&id, &r, "slug");
}

#[test]
fn manifest_numbers() {
    let id = seller();
    let sample = |f: &dyn Fn(&mut SampleEntry)| {
        let mut m = manifest();
        f(&mut m.samples[0]);
        m
    };
    assert_invalid(&id, &sample(&|s| s.sample_rate = 0), "sample rate");
    assert_invalid(&id, &sample(&|s| s.sample_rate = 1_000_000), "sample rate");
    assert_invalid(&id, &sample(&|s| s.channels = 0), "channels");
    assert_invalid(&id, &sample(&|s| s.bit_depth = Some(0)), "bit depth");
    assert_invalid(&id, &sample(&|s| s.tempo.as_mut().unwrap().bpm = 1000.0), "tempo");
    assert_invalid(&id, &sample(&|s| s.tempo.as_mut().unwrap().confidence = 1.5), "tempo");
    assert_invalid(&id, &sample(&|s| s.key.as_mut().unwrap().tonic = 12), "tonic");
    // JSON cannot carry infinities: signing refuses, and a number too large for f32
    // in a hostile body decodes to infinity and is refused by the checks.
    assert!(matches!(
        sample(&|s| s.peak_dbfs = f32::INFINITY).sign(&id),
        Err(ProtocolError::Invalid { reason, .. }) if reason.contains("finite")
    ));
    let body =
        serde_json::to_string(&manifest()).unwrap().replace("\"peak_dbfs\":-0.5", "\"peak_dbfs\":1e39");
    let envelope = Envelope::seal(&id, Kind::Manifest, body.as_bytes()).unwrap();
    let err = Manifest::open(envelope.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Invalid { reason, .. } if reason.contains("finite"))
            || matches!(err, ProtocolError::Decode { .. }),
        "{err}"
    );

    let mut m = manifest();
    m.price = Some(Price { amount_minor: 0, currency: "USD".into() });
    assert_invalid(&id, &m, "free pack has no price");
    let mut m = manifest();
    m.price = Some(Price { amount_minor: 100, currency: "usd".into() });
    assert_invalid(&id, &m, "currency");
}

#[test]
fn purchase_and_license_limits() {
    let mut r = purchase_request();
    r.payment_ref = Some("r".repeat(MAX_PAYMENT_REF + 1));
    assert_invalid(&buyer(), &r, "payment reference");
    let mut r = purchase_request();
    r.price.as_mut().unwrap().currency = "dollars".into();
    assert_invalid(&buyer(), &r, "currency");

    let mut t = license_token();
    t.price.as_mut().unwrap().currency = String::new();
    assert_invalid(&seller(), &t, "currency");
    let mut t = license_token();
    t.terms = LicenseTerms::Named("n".repeat(MAX_SHORT_TEXT + 1));
    assert_invalid(&seller(), &t, "license name");
}

#[test]
fn unknown_fields_and_nan_are_decode_errors() {
    let mut json: serde_json::Value = serde_json::to_value(retraction()).unwrap();
    json["extra"] = 1.into();
    let envelope = Envelope::seal(&seller(), Kind::Retraction, &serde_json::to_vec(&json).unwrap()).unwrap();
    assert!(matches!(Retraction::open(envelope.as_bytes()), Err(ProtocolError::Decode { .. })));

    // JSON has no NaN: serde_json writes null, which does not decode as f32.
    let mut m = manifest();
    m.samples[0].peak_dbfs = f32::NAN;
    assert!(matches!(m.sign(&seller()), Err(ProtocolError::Invalid { .. })));
    assert!(matches!(
        Manifest::open(seal_unchecked(&seller(), &m).as_bytes()),
        Err(ProtocolError::Decode { .. })
    ));
}

#[test]
fn malformed_descriptor_or_preview_fields_refuse_the_whole_manifest() {
    let mut m = manifest();
    m.samples[0].descriptor = Some(Descriptor([7; DESCRIPTOR_DIMS]));
    let good = serde_json::to_string(&m).unwrap();
    let hex = m.samples[0].descriptor.unwrap().to_string();
    let preview = m.samples[0].preview.unwrap().to_string();
    let bad_bodies = [
        good.replace(&hex, &hex[..62]),
        good.replace(&hex, &format!("{hex}00")),
        good.replace(&hex, &format!("zz{}", &hex[2..])),
        good.replace(&format!("\"{hex}\""), "[7,7,7]"),
        good.replace(&preview, &preview[..60]),
        good.replace(&preview, &format!("{}xy", &preview[..62])),
    ];
    assert!(
        Manifest::open(Envelope::seal(&seller(), Kind::Manifest, good.as_bytes()).unwrap().as_bytes())
            .is_ok()
    );
    for body in bad_bodies {
        assert_ne!(body, good);
        let envelope = Envelope::seal(&seller(), Kind::Manifest, body.as_bytes()).unwrap();
        let result = Manifest::open(envelope.as_bytes());
        assert!(matches!(result, Err(ProtocolError::Decode { .. })), "{result:?}");
    }
}
