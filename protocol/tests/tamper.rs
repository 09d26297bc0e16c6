//! Changed bytes, wrong kinds, wrong signers and truncation are all refused with an
//! error, never a panic and never a silently different value.

mod common;

use common::*;
use smpl_protocol::*;

const HEADER: usize = limits::ENVELOPE_HEADER_BYTES;

/// A manifest as small as the rules allow, so the byte loop below stays fast.
fn small_manifest() -> Manifest {
    let mut m = manifest();
    m.description.clear();
    m.tags.clear();
    m.samples = vec![sample_one_shot()];
    m.samples[0].waveform.clear();
    m
}

#[test]
fn every_single_byte_flip_is_refused() {
    let envelope = small_manifest().sign(&seller()).unwrap();
    let bytes = envelope.as_bytes();
    assert!(bytes.len() < 1000, "keep this envelope small");
    for pos in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.to_vec();
            bad[pos] ^= mask;
            let err = Manifest::open(&bad).expect_err("a flipped byte was accepted");
            // Signature and body bytes are covered by the signature itself.
            if (38..102).contains(&pos) || pos >= HEADER {
                assert!(
                    matches!(err, ProtocolError::BadSignature(Kind::Manifest)),
                    "flip {mask:#x} at {pos}: {err}"
                );
            }
            // The signer's key: an invalid point, or a valid key that did not sign.
            if (6..38).contains(&pos) {
                assert!(
                    matches!(err, ProtocolError::BadSignature(_) | ProtocolError::BadKey(_)),
                    "flip {mask:#x} at {pos}: {err}"
                );
            }
        }
    }
}

#[test]
fn header_flips_give_the_matching_error() {
    let bytes = retraction().sign(&seller()).unwrap().into_bytes();
    let flip = |pos: usize, value: u8| {
        let mut bad = bytes.clone();
        bad[pos] = value;
        Envelope::open(&bad).unwrap_err()
    };
    assert!(matches!(flip(0, b'X'), ProtocolError::Malformed(_)));
    assert!(matches!(flip(4, 2), ProtocolError::UnknownVersion(2)));
    assert!(matches!(flip(5, 0), ProtocolError::UnknownKind(0)));
    assert!(matches!(flip(5, 9), ProtocolError::UnknownKind(9)));
    // Relabelled as another known kind: the domain separator differs.
    assert!(matches!(
        flip(5, Kind::PurchaseRequest as u8),
        ProtocolError::BadSignature(Kind::PurchaseRequest)
    ));
    // Length field.
    assert!(matches!(flip(105, bytes[105] + 1), ProtocolError::Malformed(_)));
    assert!(matches!(flip(102, 0xff), ProtocolError::TooLarge { .. }));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = manifest().sign(&seller()).unwrap().into_bytes();
    bytes.push(b' ');
    assert!(matches!(Envelope::open(&bytes), Err(ProtocolError::Malformed(_))));
}

#[test]
fn truncations_at_every_length_are_refused() {
    let envelopes = [
        manifest().sign(&seller()).unwrap(),
        retraction().sign(&seller()).unwrap(),
        purchase_request().sign(&buyer()).unwrap(),
        license_token().sign(&seller()).unwrap(),
    ];
    for envelope in &envelopes {
        let bytes = envelope.as_bytes();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let err = Envelope::open(cut).unwrap_err();
            if len < HEADER {
                assert!(matches!(err, ProtocolError::Malformed(_)), "{len}: {err}");
            } else {
                assert!(
                    matches!(err, ProtocolError::Malformed(_)),
                    "{} cut to {len}: {err}",
                    envelope.kind()
                );
            }
            assert!(Manifest::open(cut).is_err());
            assert!(Retraction::open(cut).is_err());
            assert!(PurchaseRequest::open(cut).is_err());
            assert!(LicenseToken::open(cut).is_err());
        }
        // A truncated body with a length field fixed up to match is a bad signature.
        let mut short = bytes[..bytes.len() - 1].to_vec();
        let len = (short.len() - HEADER) as u32;
        short[102..106].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(Envelope::open(&short), Err(ProtocolError::BadSignature(_))));
    }
}

#[test]
fn a_body_signed_as_one_kind_does_not_open_as_another() {
    let m = manifest().sign(&seller()).unwrap();
    assert!(matches!(
        Retraction::open(m.as_bytes()),
        Err(ProtocolError::WrongKind { expected: Kind::Retraction, got: Kind::Manifest })
    ));
    assert!(matches!(LicenseToken::from_envelope(&m), Err(ProtocolError::WrongKind { .. })));

    // The same body sealed under every kind: only the kind it was sealed as verifies,
    // and relabelling the kind byte breaks the signature.
    let body = serde_json::to_vec(&retraction()).unwrap();
    for sealed_as in Kind::ALL {
        let envelope = Envelope::seal(&seller(), sealed_as, &body).unwrap();
        for relabel in Kind::ALL {
            let mut bytes = envelope.as_bytes().to_vec();
            bytes[5] = relabel as u8;
            let opened = Envelope::open(&bytes);
            if relabel == sealed_as {
                assert_eq!(opened.unwrap().kind(), sealed_as);
            } else {
                assert!(matches!(opened, Err(ProtocolError::BadSignature(k)) if k == relabel));
            }
        }
        let typed = Retraction::open(envelope.as_bytes());
        if sealed_as == Kind::Retraction {
            assert_eq!(typed.unwrap().0, retraction());
        } else {
            assert!(matches!(typed, Err(ProtocolError::WrongKind { .. })));
        }
    }
}

#[test]
fn a_manifest_signed_by_a_non_author_is_refused() {
    let m = manifest();
    // Signing refuses outright.
    assert!(matches!(m.sign(&buyer()), Err(ProtocolError::Invalid { kind: Kind::Manifest, .. })));
    // A hostile peer seals it anyway: the signature is valid, the signer is wrong.
    let forged = seal_unchecked(&buyer(), &m);
    assert!(Envelope::open(forged.as_bytes()).is_ok());
    match Manifest::open(forged.as_bytes()) {
        Err(ProtocolError::Invalid { reason, .. }) => assert!(reason.contains("signer")),
        other => panic!("forged manifest: {other:?}"),
    }
    // A header that claims the author's key over the buyer's signature.
    let mut bytes = forged.into_bytes();
    bytes[6..38].copy_from_slice(seller().node_id().as_bytes());
    assert!(matches!(Manifest::open(&bytes), Err(ProtocolError::BadSignature(Kind::Manifest))));
}

#[test]
fn every_kind_checks_its_signer() {
    let other = Identity::from_secret_bytes([42; 32]);
    assert_invalid(&other, &retraction(), "signer");
    assert_invalid(&seller(), &purchase_request(), "signer");
    assert_invalid(&buyer(), &license_token(), "signer");
}

#[test]
fn weak_keys_and_non_canonical_signatures_are_refused() {
    let envelope = retraction().sign(&seller()).unwrap();
    // The identity point (a small-order key) with an all-zero signature "verifies"
    // under lax ed25519 for every message; strict verification refuses it.
    let mut bytes = envelope.as_bytes().to_vec();
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    bytes[6..38].copy_from_slice(&identity_point);
    bytes[38..102].copy_from_slice(&{
        let mut sig = [0u8; 64];
        sig[0] = 1;
        sig
    });
    assert!(matches!(Envelope::open(&bytes), Err(ProtocolError::BadSignature(_) | ProtocolError::BadKey(_))));
    // S + L (the group order) is the same signature in lax verifiers, not here.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut bytes = envelope.as_bytes().to_vec();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = bytes[70 + i] as u16 + L[i] as u16 + carry;
        bytes[70 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert!(matches!(Envelope::open(&bytes), Err(ProtocolError::BadSignature(_))));
}
