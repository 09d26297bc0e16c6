//! Golden test vectors: fixed keys and bodies give these exact bytes, forever.
//!
//! The expected envelopes live in `tests/golden/<kind>.hex` (lowercase hex, one line).
//! Changing them changes the wire format: old signatures stop verifying. To rewrite
//! them on purpose, run with `SMPL_BLESS=1` and review the diff.
//!
//! The vectors were cross-checked once against independent implementations (Python
//! `cryptography` Ed25519 and the `blake3` package): public keys, pack id, and every
//! signature over `"smpl/v1/<kind>" || 0x00 || body` re-derived from the seeds.

mod common;

use std::path::PathBuf;

use common::*;
use smpl_protocol::*;
use smpl_testkit::golden::{self, hex};

/// `Identity::from_secret_bytes([7; 32])` in its one text form.
const SELLER_NODE_ID: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
/// `Identity::from_secret_bytes([9; 32])`.
const BUYER_NODE_ID: &str = "fd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618";
/// `PackId::derive(SELLER_NODE_ID, "dusty-808s")`.
const PACK_ID: &str = "97644dd202543b21560fd5220c1eab15";

/// The signature in `manifest.hex`.
const MANIFEST_SIGNATURE: &str = "6a4efe18645ef34ea3b8fd896f84b4836f091639ef2f546e99ce0a478aa2ad15\
                                  36d82d96ce19990a7a9c1374ba7c4f132b343e7fd4636a3003f615340fd68108";
/// The signature in `retraction.hex`.
const RETRACTION_SIGNATURE: &str = "7523db3aaba638f6dfbfff3136b130e05fd4008e28890721791f2f3779280e6e\
                                    c8b4d3890d5661833e431954e7110315687762403f0380cbd94a14b05575850e";
/// The body in `retraction.hex`.
const RETRACTION_BODY: &str = r#"{"pack_id":"97644dd202543b21560fd5220c1eab15","author":"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c","slug":"dusty-808s","seq":3,"retracted_at":1700000600}"#;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Checks `value` signed by `identity` against the golden file `name`, and that the
/// golden bytes open to `value` again.
fn check_golden<T>(name: &str, identity: &Identity, value: &T)
where
    T: Signed + PartialEq + std::fmt::Debug,
{
    let envelope = value.sign(identity).expect("sign");
    let expected = golden::expected(&golden_dir(), name, envelope.as_bytes());
    assert_eq!(hex(envelope.as_bytes()), hex(&expected), "{name}: envelope bytes changed");

    // Header as the spec says: magic, version, kind, signer, signature, length, body.
    assert_eq!(&expected[..4], b"SMPL");
    assert_eq!(expected[4], 1);
    assert_eq!(expected[5], T::KIND as u8);
    assert_eq!(&expected[6..38], identity.node_id().as_bytes());
    assert_eq!(&expected[38..102], &envelope.signature());
    let len = u32::from_be_bytes(expected[102..106].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, expected.len() - 106);
    assert_eq!(&expected[106..], serde_json::to_vec(value).expect("json"));

    let (read, opened) = T::open(&expected).expect("golden bytes open");
    assert_eq!(&read, value);
    assert_eq!(opened.as_bytes(), &expected[..]);
    assert_eq!(opened.signer(), identity.node_id());
    assert_eq!(opened.kind(), T::KIND);
}

#[test]
fn node_id_text_form() {
    assert_eq!(seller().node_id().to_string(), SELLER_NODE_ID);
    assert_eq!(buyer().node_id().to_string(), BUYER_NODE_ID);
    assert_eq!(SELLER_NODE_ID.parse::<NodeId>().unwrap(), seller().node_id());
    assert_eq!(serde_json::to_string(&seller().node_id()).unwrap(), format!("\"{SELLER_NODE_ID}\""));
}

#[test]
fn pack_id_derivation() {
    let id = PackId::derive(&seller().node_id(), "dusty-808s");
    assert_eq!(id.to_string(), PACK_ID);
    assert_ne!(PackId::derive(&buyer().node_id(), "dusty-808s"), id);
    assert_ne!(PackId::derive(&seller().node_id(), "dusty-808"), id);
}

#[test]
fn manifest_golden() {
    check_golden("manifest", &seller(), &manifest());
    let envelope = manifest().sign(&seller()).unwrap();
    assert_eq!(hex(&envelope.signature()), MANIFEST_SIGNATURE);
}

#[test]
fn free_manifest_golden() {
    let mut m = manifest();
    m.price = None;
    m.license = LicenseTerms::Custom("Use it in your tracks.\nDo not resell the samples.".into());
    m.cover = Some(hash(0xcc));
    m.samples.truncate(1);
    check_golden("manifest-free", &seller(), &m);
}

/// A manifest with a one-shot's root note and a tempo read from a file name.
#[test]
fn manifest_with_root_note_golden() {
    let mut m = manifest();
    m.samples[0].tempo = Some(Tempo { bpm: 128.0, source: Source::Name, confidence: 1.0 });
    m.samples[1].note = Some(Note { pitch_class: 1, octave: Some(2), source: Source::Detected });
    check_golden("manifest-note", &seller(), &m);
    let body = String::from_utf8(m.sign(&seller()).unwrap().body().to_vec()).unwrap();
    assert!(body.contains(r#""note":{"pitch_class":1,"octave":2,"source":"detected"}"#), "{body}");
}

/// Manifests signed before root notes existed carry no `note` field: their exact
/// bytes still verify and decode, with no note.
#[test]
fn manifest_from_before_root_notes_still_verifies() {
    for name in ["manifest", "manifest-free"] {
        let path = golden_dir().join(format!("{name}.hex"));
        let bytes = golden::unhex(&std::fs::read_to_string(&path).expect("golden file"));
        let body = &bytes[106..];
        assert!(!String::from_utf8_lossy(body).contains("\"note\""), "{name}");
        let (read, opened) = Manifest::open(&bytes).expect("old manifest opens");
        assert_eq!(opened.as_bytes(), &bytes[..]);
        assert!(read.samples.iter().all(|s| s.note.is_none()), "{name}");
    }
}

#[test]
fn retraction_golden() {
    check_golden("retraction", &seller(), &retraction());
    let envelope = retraction().sign(&seller()).unwrap();
    assert_eq!(hex(&envelope.signature()), RETRACTION_SIGNATURE);
    assert_eq!(envelope.body(), RETRACTION_BODY.as_bytes());
}

#[test]
fn purchase_request_golden() {
    check_golden("purchase-request", &buyer(), &purchase_request());
}

#[test]
fn license_token_golden() {
    check_golden("license-token", &seller(), &license_token());
}
