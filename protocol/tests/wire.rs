//! Golden bytes and round-trips for the request-response messages (`wire`) and test
//! vectors for the content hash (`collection`).
//!
//! Each message value is encoded with `cbor4ii`, the encoder of libp2p's
//! request-response cbor codec, and compared three ways: with the golden file
//! `tests/golden/wire-<message>-<variant>.hex` (lowercase hex, one line), with the
//! bytes the `wire` module docs describe (built here by a small CBOR writer that
//! follows those docs, not by serde), and decoded back to the value. Changing a
//! golden file changes the wire format: nodes of the old format stop understanding
//! the new one. To rewrite them on purpose, run with `SMPL_BLESS=1` and review the
//! diff.

use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use smpl_protocol::wire::*;
use smpl_protocol::{BlobHash, PackId, collection, limits, possession, sync};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.hex"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

/// The bytes libp2p's cbor codec writes for `value`.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    cbor4ii::serde::to_vec(Vec::new(), value).expect("encode")
}

/// What libp2p's cbor codec reads from `bytes`.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    cbor4ii::serde::from_slice(bytes).map_err(|e| e.to_string())
}

/// Checks `value` against its golden file and against `spec` (its bytes as the
/// `wire` docs describe them), and that the golden bytes decode to `value`.
fn check_golden<T>(name: &str, value: &T, spec: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = encode(value);
    let path = golden_path(name);
    if std::env::var_os("SMPL_BLESS").is_some() {
        std::fs::write(&path, hex(&bytes) + "\n").expect("write golden");
    }
    let golden = unhex(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}")));
    assert_eq!(hex(&bytes), hex(&golden), "{name}: encoding changed");
    assert_eq!(hex(&golden), hex(spec), "{name}: the bytes are not what the wire docs say");
    assert_eq!(&decode::<T>(&golden).expect("golden bytes decode"), value, "{name}");
}

// ---------------------------------------------------------------------------------
// The encoding as the `wire` docs state it, written by hand.

/// A CBOR item head: major type and argument, in its shortest form.
fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [&[m | 25][..], &(n as u16).to_be_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[m | 26][..], &(n as u32).to_be_bytes()].concat(),
        _ => [&[m | 27][..], &n.to_be_bytes()].concat(),
    }
}

fn uint(n: u64) -> Vec<u8> {
    head(0, n)
}

fn bytes(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn array(items: Vec<Vec<u8>>) -> Vec<u8> {
    [head(4, items.len() as u64), items.concat()].concat()
}

fn map(entries: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    let mut out = head(5, entries.len() as u64);
    for (key, value) in entries {
        out.extend(text(key));
        out.extend(value);
    }
    out
}

const NULL: u8 = 0xf6;

/// A variant without data.
fn unit_variant(name: &str) -> Vec<u8> {
    text(name)
}

/// A variant with one value.
fn newtype_variant(name: &str, value: Vec<u8>) -> Vec<u8> {
    map(vec![(name, value)])
}

/// A variant with named fields.
fn struct_variant(name: &str, fields: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    map(vec![(name, map(fields))])
}

fn socket_addr(addr: &SocketAddr) -> Vec<u8> {
    let octets = |o: &[u8]| array(o.iter().map(|b| uint(u64::from(*b))).collect());
    match addr {
        SocketAddr::V4(a) => {
            newtype_variant("V4", array(vec![octets(&a.ip().octets()), uint(u64::from(a.port()))]))
        }
        SocketAddr::V6(a) => {
            newtype_variant("V6", array(vec![octets(&a.ip().octets()), uint(u64::from(a.port()))]))
        }
    }
}

fn addrs(list: &[SocketAddr]) -> Vec<u8> {
    array(list.iter().map(socket_addr).collect())
}

fn byte_list(list: &[ByteBuf]) -> Vec<u8> {
    array(list.iter().map(|b| bytes(b)).collect())
}

/// A `Hello`: the relay fields are left out when there are none, so a node that
/// runs and uses no relay sends what nodes without relay fields send.
fn spec_hello(iroh: &[SocketAddr], relay: &Option<RelayOffer>, home: &Option<RelayHome>) -> Vec<u8> {
    let mut fields = vec![("iroh", addrs(iroh))];
    if let Some(relay) = relay {
        fields.push(("relay", map(vec![("port", uint(relay.port.into())), ("cert", bytes(&relay.cert))])));
    }
    if let Some(home) = home {
        fields.push(("home", map(vec![("url", text(&home.url)), ("cert", bytes(&home.cert))])));
    }
    struct_variant("Hello", fields)
}

fn spec_sync_request(r: &SyncRequest) -> Vec<u8> {
    match r {
        SyncRequest::Hello { iroh, relay, home } => spec_hello(iroh, relay, home),
        SyncRequest::Reconcile(message) => newtype_variant("Reconcile", bytes(message)),
        SyncRequest::Fetch(ids) => {
            newtype_variant("Fetch", array(ids.iter().map(|id| text(&id.to_hex())).collect()))
        }
        SyncRequest::Announce(envelope) => newtype_variant("Announce", bytes(envelope)),
    }
}

fn spec_sync_response(r: &SyncResponse) -> Vec<u8> {
    match r {
        SyncResponse::Hello { iroh, relay, home } => spec_hello(iroh, relay, home),
        SyncResponse::Reconcile(Some(message)) => newtype_variant("Reconcile", bytes(message)),
        SyncResponse::Reconcile(None) => newtype_variant("Reconcile", vec![NULL]),
        SyncResponse::Envelopes(list) => newtype_variant("Envelopes", byte_list(list)),
        SyncResponse::Received => unit_variant("Received"),
        SyncResponse::Refused(reason) => newtype_variant("Refused", text(reason)),
    }
}

fn spec_trade_request(r: &TradeRequest) -> Vec<u8> {
    match r {
        TradeRequest::Buy(envelope) => newtype_variant("Buy", bytes(envelope)),
        TradeRequest::Present(envelope) => newtype_variant("Present", bytes(envelope)),
        TradeRequest::Prove { blob, chunk } => {
            struct_variant("Prove", vec![("blob", text(&blob.to_hex())), ("chunk", uint(*chunk))])
        }
    }
}

fn spec_trade_response(r: &TradeResponse) -> Vec<u8> {
    match r {
        TradeResponse::Issued { order, license } => {
            struct_variant("Issued", vec![("order", text(order)), ("license", bytes(license))])
        }
        TradeResponse::Pending { order } => struct_variant("Pending", vec![("order", text(order))]),
        TradeResponse::Rejected { order, reason } => {
            struct_variant("Rejected", vec![("order", text(order)), ("reason", text(reason))])
        }
        TradeResponse::Accepted => unit_variant("Accepted"),
        TradeResponse::Proof(hashes) => newtype_variant("Proof", byte_list(hashes)),
        TradeResponse::Refused(reason) => newtype_variant("Refused", text(reason)),
    }
}

// ---------------------------------------------------------------------------------
// One value of every variant. The name of each golden file comes from an exhaustive
// match, so a new variant does not compile until it has a name here.

fn sync_request_name(r: &SyncRequest) -> &'static str {
    match r {
        SyncRequest::Hello { .. } => "hello",
        SyncRequest::Reconcile(_) => "reconcile",
        SyncRequest::Fetch(_) => "fetch",
        SyncRequest::Announce(_) => "announce",
    }
}

fn sync_response_name(r: &SyncResponse) -> &'static str {
    match r {
        SyncResponse::Hello { .. } => "hello",
        SyncResponse::Reconcile(Some(_)) => "reconcile",
        SyncResponse::Reconcile(None) => "reconcile-done",
        SyncResponse::Envelopes(_) => "envelopes",
        SyncResponse::Received => "received",
        SyncResponse::Refused(_) => "refused",
    }
}

fn trade_request_name(r: &TradeRequest) -> &'static str {
    match r {
        TradeRequest::Buy(_) => "buy",
        TradeRequest::Present(_) => "present",
        TradeRequest::Prove { .. } => "prove",
    }
}

fn trade_response_name(r: &TradeResponse) -> &'static str {
    match r {
        TradeResponse::Issued { .. } => "issued",
        TradeResponse::Pending { .. } => "pending",
        TradeResponse::Rejected { .. } => "rejected",
        TradeResponse::Accepted => "accepted",
        TradeResponse::Proof(_) => "proof",
        TradeResponse::Refused(_) => "refused",
    }
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port))
}

fn v6(a: [u8; 16], port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a), port, 0, 0))
}

/// `[2001:db8::1]`.
const DOC_V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// The pack id of the golden manifest (`PackId::derive(seller, "dusty-808s")`).
fn pack_id() -> PackId {
    "97644dd202543b21560fd5220c1eab15".parse().expect("pack id")
}

/// Stands for envelope bytes: the messages carry them as opaque byte strings.
fn envelope(kind: u8, len: usize) -> ByteBuf {
    let mut b = b"SMPL\x01".to_vec();
    b.push(kind);
    b.extend((0..len).map(|i| i as u8));
    ByteBuf::from(b)
}

/// A sync message: one range up to the end, listing one item (`[0xee; 16]` at
/// version 6).
fn item_list() -> Vec<u8> {
    [&[sync::SYNC_VERSION, 1, 0xff, 2, 1][..], &[0xee; 16], &[6]].concat()
}

const ORDER: &str = "5d1e0f3a9b7c2468";

fn sync_requests() -> Vec<SyncRequest> {
    vec![
        SyncRequest::Hello {
            iroh: vec![v4([192, 168, 1, 20], 4433), v6(DOC_V6, 4433)],
            relay: None,
            home: None,
        },
        // Version 1, no ranges: "nothing more from me".
        SyncRequest::Reconcile(ByteBuf::from(vec![sync::SYNC_VERSION, 0])),
        SyncRequest::Fetch(vec![pack_id(), PackId([0xee; 16])]),
        SyncRequest::Announce(envelope(1, 24)),
    ]
}

fn sync_responses() -> Vec<SyncResponse> {
    vec![
        SyncResponse::Hello {
            iroh: vec![v4([10, 0, 0, 7], 11204)],
            relay: Some(RelayOffer { port: 4748, cert: [0xc3; 32] }),
            home: Some(RelayHome { url: "https://198.51.100.10:4748/".into(), cert: [0x5a; 32] }),
        },
        SyncResponse::Reconcile(Some(ByteBuf::from(item_list()))),
        SyncResponse::Reconcile(None),
        SyncResponse::Envelopes(vec![envelope(1, 24), envelope(2, 3)]),
        SyncResponse::Received,
        SyncResponse::Refused("banned".into()),
    ]
}

fn trade_requests() -> Vec<TradeRequest> {
    vec![
        TradeRequest::Buy(envelope(3, 16)),
        TradeRequest::Present(envelope(4, 16)),
        TradeRequest::Prove { blob: BlobHash([0x11; 32]), chunk: 1000 },
    ]
}

fn trade_responses() -> Vec<TradeResponse> {
    vec![
        TradeResponse::Issued { order: ORDER.into(), license: envelope(4, 8) },
        TradeResponse::Pending { order: ORDER.into() },
        TradeResponse::Rejected { order: ORDER.into(), reason: "sold out".into() },
        TradeResponse::Accepted,
        TradeResponse::Proof(vec![ByteBuf::from(vec![0xaa; 32]), ByteBuf::from(vec![0xbb; 32])]),
        TradeResponse::Refused("busy; ask again later".into()),
    ]
}

/// Checks each value against its golden file; `variants` is how many variants (and
/// `None`/`Some` cases) the enum has.
fn check_all<T>(
    message: &str,
    values: Vec<T>,
    variants: usize,
    name: fn(&T) -> &'static str,
    spec: fn(&T) -> Vec<u8>,
) where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut names: Vec<&str> = values.iter().map(name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!((names.len(), values.len()), (variants, variants), "{message}: one value of every variant");
    for value in &values {
        check_golden(&format!("wire-{message}-{}", name(value)), value, &spec(value));
    }
}

#[test]
fn sync_request_golden() {
    check_all("sync-request", sync_requests(), 4, sync_request_name, spec_sync_request);
}

#[test]
fn sync_response_golden() {
    check_all("sync-response", sync_responses(), 6, sync_response_name, spec_sync_response);
}

#[test]
fn trade_request_golden() {
    check_all("trade-request", trade_requests(), 3, trade_request_name, spec_trade_request);
}

#[test]
fn trade_response_golden() {
    check_all("trade-response", trade_responses(), 6, trade_response_name, spec_trade_response);
}

/// The sync messages in the golden values are valid ones.
#[test]
fn golden_sync_messages_are_valid() {
    assert!(sync::SyncMessage::decode(&[sync::SYNC_VERSION, 0]).is_ok());
    let listed = sync::SyncMessage::decode(&item_list()).expect("item list");
    assert_eq!(listed.encode(), sync::initiate(&[sync::Item { id: PackId([0xee; 16]), version: 6 }]));
}

/// A few bytes spelled out, so a reader of the docs can follow one message whole.
#[test]
fn bytes_spelled_out() {
    assert_eq!(encode(&TradeResponse::Accepted), b"\x68Accepted");
    assert_eq!(encode(&SyncResponse::Reconcile(None)), [&[0xa1, 0x69][..], b"Reconcile", &[0xf6]].concat());
    let prove = TradeRequest::Prove { blob: BlobHash([0x11; 32]), chunk: 1000 };
    let expected = [
        &[0xa1, 0x65][..],
        b"Prove",
        &[0xa2, 0x64],
        b"blob",
        &[0x78, 64],
        "11".repeat(32).as_bytes(),
        &[0x65],
        b"chunk",
        &[0x19, 0x03, 0xe8],
    ]
    .concat();
    assert_eq!(encode(&prove), expected);
    assert_eq!(
        encode(&SyncRequest::Hello { iroh: vec![v4([127, 0, 0, 1], 80)], relay: None, home: None }),
        [
            &[0xa1, 0x65][..],
            b"Hello",
            &[0xa1, 0x64],
            b"iroh",
            &[0x81, 0xa1, 0x62],
            b"V4",
            &[0x82, 0x84, 0x18, 127, 0, 0, 1, 0x18, 80],
        ]
        .concat()
    );
}

// ---------------------------------------------------------------------------------
// Framing and limits.

#[test]
fn a_cut_off_message_does_not_decode() {
    for value in trade_responses() {
        let bytes = encode(&value);
        for len in 0..bytes.len() {
            assert!(decode::<TradeResponse>(&bytes[..len]).is_err(), "{value:?} cut at {len}");
        }
    }
    for value in sync_requests() {
        let bytes = encode(&value);
        assert!(decode::<SyncRequest>(&bytes[..bytes.len() - 1]).is_err(), "{value:?}");
    }
}

#[test]
fn bytes_after_the_message_are_ignored() {
    for value in trade_requests() {
        let mut bytes = encode(&value);
        bytes.extend_from_slice(b"\x00trailing");
        assert_eq!(decode::<TradeRequest>(&bytes).expect("decode"), value);
    }
}

#[test]
fn unknown_variants_and_wrong_types_are_refused() {
    assert!(decode::<TradeResponse>(&text("Approved")).is_err());
    assert!(decode::<TradeRequest>(&newtype_variant("Buy", text("not bytes"))).is_err());
    assert!(decode::<SyncRequest>(&newtype_variant("Fetch", array(vec![text("00")]))).is_err());
    assert!(decode::<SyncRequest>(&newtype_variant("Fetch", array(vec![bytes(&[0; 16])]))).is_err());
    assert!(decode::<SyncResponse>(&map(vec![])).is_err());
}

#[test]
fn ipv6_flow_info_and_scope_id_are_not_sent() {
    let scoped = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(DOC_V6), 4433, 7, 3));
    let hello = SyncRequest::Hello { iroh: vec![scoped], relay: None, home: None };
    assert_eq!(encode(&hello), spec_sync_request(&hello));
    let unscoped = SyncRequest::Hello { iroh: vec![v6(DOC_V6, 4433)], relay: None, home: None };
    assert_eq!(encode(&hello), encode(&unscoped));
    assert_eq!(decode::<SyncRequest>(&encode(&hello)).expect("decode"), unscoped);
}

/// The largest value of each message that the protocol allows fits its size limit.
#[test]
fn largest_messages_fit_their_limits() {
    let fits = |bytes: Vec<u8>, limit: u64, what: &str| {
        assert!(bytes.len() as u64 <= limit, "{what}: {} bytes over {limit}", bytes.len());
    };
    let fetch = SyncRequest::Fetch((0..MAX_FETCH_IDS).map(|i| PackId([i as u8; 16])).collect());
    fits(encode(&fetch), MAX_SYNC_REQUEST_BYTES, "largest Fetch");
    let message = ByteBuf::from(vec![0xff; sync::MAX_MESSAGE_BYTES]);
    fits(encode(&SyncRequest::Reconcile(message.clone())), MAX_SYNC_REQUEST_BYTES, "largest Reconcile");
    let announced = ByteBuf::from(vec![0; MAX_ANNOUNCED_BYTES]);
    fits(encode(&SyncRequest::Announce(announced)), MAX_SYNC_REQUEST_BYTES, "largest Announce");
    fits(
        encode(&SyncResponse::Reconcile(Some(message))),
        MAX_SYNC_RESPONSE_BYTES,
        "largest Reconcile answer",
    );
    let manifest = ByteBuf::from(vec![0; limits::MAX_ENVELOPE_BYTES]);
    fits(
        encode(&SyncResponse::Envelopes(vec![manifest.clone(); 3])),
        MAX_SYNC_RESPONSE_BYTES,
        "largest manifests",
    );

    let buy = envelope(3, limits::ENVELOPE_HEADER_BYTES + limits::MAX_SMALL_BODY_BYTES);
    fits(encode(&TradeRequest::Buy(buy)), MAX_TRADE_MESSAGE_BYTES, "largest Buy");
    let license = envelope(4, limits::ENVELOPE_HEADER_BYTES + limits::MAX_LICENSE_BYTES);
    fits(encode(&TradeRequest::Present(license.clone())), MAX_TRADE_MESSAGE_BYTES, "largest Present");
    let issued = TradeResponse::Issued { order: ORDER.into(), license };
    fits(encode(&issued), MAX_TRADE_MESSAGE_BYTES, "largest Issued");
    let proof = TradeResponse::Proof(vec![ByteBuf::from(vec![0xff; 32]); possession::MAX_PROOF_HASHES]);
    fits(encode(&proof), MAX_TRADE_MESSAGE_BYTES, "largest Proof");
    let prove = TradeRequest::Prove { blob: BlobHash([0xff; 32]), chunk: u64::MAX };
    fits(encode(&prove), MAX_TRADE_MESSAGE_BYTES, "largest Prove");
}

// ---------------------------------------------------------------------------------
// Round-trips: any value encodes to the bytes the docs describe and decodes back.

fn socket_addrs() -> impl Strategy<Value = Vec<SocketAddr>> {
    // Flow info and scope id do not travel (see the test above).
    let addr = any::<SocketAddr>().prop_map(|a| match a {
        SocketAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0)),
        a => a,
    });
    prop::collection::vec(addr, 0..6)
}

fn byte_buf(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn relay_offer() -> impl Strategy<Value = RelayOffer> {
    (any::<u16>(), any::<[u8; 32]>()).prop_map(|(port, cert)| RelayOffer { port, cert })
}

fn relay_home() -> impl Strategy<Value = RelayHome> {
    ("https://[a-z0-9.]{1,30}:[0-9]{1,5}/", any::<[u8; 32]>()).prop_map(|(url, cert)| RelayHome { url, cert })
}

fn any_sync_request() -> impl Strategy<Value = SyncRequest> {
    prop_oneof![
        (socket_addrs(), prop::option::of(relay_offer())).prop_map(|(iroh, relay)| SyncRequest::Hello {
            iroh,
            relay,
            home: None
        }),
        byte_buf(300).prop_map(SyncRequest::Reconcile),
        prop::collection::vec(any::<[u8; 16]>().prop_map(PackId), 0..40).prop_map(SyncRequest::Fetch),
        byte_buf(300).prop_map(SyncRequest::Announce),
    ]
}

fn any_sync_response() -> impl Strategy<Value = SyncResponse> {
    prop_oneof![
        (socket_addrs(), prop::option::of(relay_home())).prop_map(|(iroh, home)| SyncResponse::Hello {
            iroh,
            relay: None,
            home
        }),
        prop::option::of(byte_buf(300)).prop_map(SyncResponse::Reconcile),
        prop::collection::vec(byte_buf(300), 0..8).prop_map(SyncResponse::Envelopes),
        Just(SyncResponse::Received),
        "\\PC{0,40}".prop_map(SyncResponse::Refused),
    ]
}

fn any_trade_request() -> impl Strategy<Value = TradeRequest> {
    prop_oneof![
        byte_buf(600).prop_map(TradeRequest::Buy),
        byte_buf(600).prop_map(TradeRequest::Present),
        (any::<[u8; 32]>(), any::<u64>())
            .prop_map(|(blob, chunk)| TradeRequest::Prove { blob: BlobHash(blob), chunk }),
    ]
}

fn any_trade_response() -> impl Strategy<Value = TradeResponse> {
    prop_oneof![
        ("[0-9a-f]{16}", byte_buf(600)).prop_map(|(order, license)| TradeResponse::Issued { order, license }),
        "[0-9a-f]{16}".prop_map(|order| TradeResponse::Pending { order }),
        ("[0-9a-f]{16}", "\\PC{0,40}").prop_map(|(order, reason)| TradeResponse::Rejected { order, reason }),
        Just(TradeResponse::Accepted),
        prop::collection::vec(byte_buf(40), 0..8).prop_map(TradeResponse::Proof),
        "\\PC{0,40}".prop_map(TradeResponse::Refused),
    ]
}

fn round_trip<T>(value: &T, spec: fn(&T) -> Vec<u8>) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = encode(value);
    prop_assert_eq!(hex(&bytes), hex(&spec(value)));
    let read: T = decode(&bytes).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&read, value);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sync_request_round_trip(value in any_sync_request()) {
        round_trip(&value, spec_sync_request)?;
    }

    #[test]
    fn sync_response_round_trip(value in any_sync_response()) {
        round_trip(&value, spec_sync_response)?;
    }

    #[test]
    fn trade_request_round_trip(value in any_trade_request()) {
        round_trip(&value, spec_trade_request)?;
    }

    #[test]
    fn trade_response_round_trip(value in any_trade_response()) {
        round_trip(&value, spec_trade_response)?;
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode::<SyncRequest>(&bytes);
        let _ = decode::<SyncResponse>(&bytes);
        let _ = decode::<TradeRequest>(&bytes);
        let _ = decode::<TradeResponse>(&bytes);
    }
}

// ---------------------------------------------------------------------------------
// The content hash (`collection`): fixed names and hashes give these exact bytes.
// `node/tests/content_hash.rs` checks the same definition against iroh-blobs.

fn files() -> Vec<(&'static str, BlobHash)> {
    vec![
        ("kick.flac", BlobHash([0x21; 32])),
        ("loops/dusty-808-loop-120.wav", BlobHash([0x11; 32])),
        ("Ünïcode snare.wav", BlobHash([0x31; 32])),
    ]
}

/// `collection::metadata` of the names of [`files`].
const FILES_METADATA: &str = "436f6c6c656374696f6e56302e03096b69636b2e666c61631c6c6f6f70732f64757374792d3830382d6c6f6f702d3132302e77617613c39c6ec3af636f646520736e6172652e776176";
/// Its BLAKE3 hash: the first hash of the hash sequence.
const FILES_METADATA_HASH: &str = "5c8e51831073fbd2e3552acb2676f5ffe642397e86a41e4fce6944f33f15b509";
/// The content hash of [`files`].
const FILES_CONTENT_HASH: &str = "b4fcb4b688108eed366e86ccd1cdf59bc9aaf16a8eda13e45be4909721975bcb";
/// The content hash of no files.
const EMPTY_CONTENT_HASH: &str = "c69e3bb6adb62a337f033d8d5d34498f7e58af9eadfbd8a835b6b0f7e861dbad";

#[test]
fn content_hash_vectors() {
    let files = files();
    let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
    let meta = collection::metadata(&names);
    assert_eq!(hex(&meta), FILES_METADATA);
    assert_eq!(&meta[..13], collection::HEADER);
    assert_eq!(collection::metadata_hash(&names).to_hex(), FILES_METADATA_HASH);
    assert_eq!(collection::content_hash(files.clone()).to_hex(), FILES_CONTENT_HASH);

    let seq = collection::hash_seq(&collection::metadata_hash(&names), files.iter().map(|(_, h)| *h));
    assert_eq!(seq.len(), 32 * 4);
    assert_eq!(hex(&seq[..32]), FILES_METADATA_HASH);
    assert_eq!(hex(&seq[32..64]), "21".repeat(32));
    assert_eq!(hex(blake3::hash(&seq).as_bytes()), FILES_CONTENT_HASH);

    let all = collection::blob_hashes(files.clone());
    let expected: Vec<String> = [FILES_CONTENT_HASH.to_string(), FILES_METADATA_HASH.to_string()]
        .into_iter()
        .chain(files.iter().map(|(_, h)| h.to_hex()))
        .collect();
    assert_eq!(all.iter().map(BlobHash::to_hex).collect::<Vec<_>>(), expected);

    assert_eq!(collection::content_hash::<&str>([]).to_hex(), EMPTY_CONTENT_HASH);
}

#[test]
fn content_hash_metadata_bytes_spelled_out() {
    let meta = collection::metadata(["kick.flac", "a/b.wav"]);
    assert_eq!(meta, [&b"CollectionV0."[..], &[2, 9], b"kick.flac", &[7], b"a/b.wav"].concat());
}
