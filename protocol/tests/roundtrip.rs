//! proptest round-trips: any valid value signs, opens to the same value, and its
//! envelope bytes open again to the same bytes.

mod common;

use common::*;
use proptest::prelude::*;
use smpl_protocol::*;

fn round_trip<T>(identity: &Identity, value: &T) -> Result<(), TestCaseError>
where
    T: Signed + PartialEq + std::fmt::Debug,
{
    let envelope = value.sign(identity).map_err(|e| TestCaseError::fail(format!("sign: {e}")))?;
    prop_assert_eq!(envelope.kind(), T::KIND);
    prop_assert_eq!(envelope.signer(), identity.node_id());

    let (read, opened) =
        T::open(envelope.as_bytes()).map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
    prop_assert_eq!(&read, value);
    prop_assert_eq!(&opened, &envelope);

    // Stored bytes re-open identically, through the untyped path too.
    let again = Envelope::open(opened.as_bytes()).map_err(|e| TestCaseError::fail(format!("reopen: {e}")))?;
    prop_assert_eq!(again.as_bytes(), envelope.as_bytes());
    prop_assert_eq!(&T::from_envelope(&again).expect("decode"), value);

    // Signing is deterministic (ed25519), so the same value gives the same bytes.
    prop_assert_eq!(value.sign(identity).expect("sign again"), envelope);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn manifest_round_trip((id, m) in signed_manifest()) {
        round_trip(&id, &m)?;
    }

    #[test]
    fn retraction_round_trip((id, r) in signed_retraction()) {
        round_trip(&id, &r)?;
    }

    #[test]
    fn purchase_request_round_trip((id, r) in signed_purchase_request()) {
        round_trip(&id, &r)?;
    }

    #[test]
    fn license_token_round_trip((id, t) in signed_license_token()) {
        round_trip(&id, &t)?;
    }

    /// Random bytes never panic the reader.
    #[test]
    fn random_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(Envelope::open(&bytes).is_err());
        prop_assert!(Manifest::open(&bytes).is_err());
    }

    /// A validly signed body of arbitrary bytes is refused by decoding, not a panic.
    #[test]
    fn signed_garbage_is_refused(
        body in prop::collection::vec(any::<u8>(), 0..400),
        kind in prop::sample::select(Kind::ALL.to_vec()),
    ) {
        let envelope = Envelope::seal(&seller(), kind, &body).expect("seal");
        let opened = Envelope::open(envelope.as_bytes()).expect("signature is valid");
        prop_assert_eq!(opened.body(), &body[..]);
        prop_assert!(Manifest::from_envelope(&opened).is_err());
        prop_assert!(Retraction::from_envelope(&opened).is_err());
        prop_assert!(PurchaseRequest::from_envelope(&opened).is_err());
        prop_assert!(LicenseToken::from_envelope(&opened).is_err());
    }
}
