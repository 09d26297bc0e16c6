//! Listings, good and bad: [`Bad`] names each kind of bad listing and [`Forger`]
//! makes them, every one different, from a seed.

use std::collections::{BTreeMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use smpl_protocol::{
    BlobHash, Envelope, Identity, Kind, LicenseId, LicenseTerms, LicenseToken, Manifest, NodeId, PackId,
    PurchaseRequest, Retraction, Signed, limits,
};
use smpl_testkit::envelope::{self, seal_unchecked};
use smpl_testkit::manifest as kit;

use crate::{HELD_SEQ, SLUG, TITLE};

/// A valid manifest of one sample by `author`, titled `title`.
pub fn manifest(author: &NodeId, slug: &str, seq: u64, title: &str) -> Manifest {
    Manifest { title: title.into(), ..kit::manifest(*author, slug, seq, vec![kit::sample("kick.wav")]) }
}

/// `count` valid signed listings titled `title`, `per_key` by each fresh key, signed
/// beforehand so that a flood goes out at wire speed. `group` keeps the keys and
/// slugs of different calls apart.
pub fn fresh_listings(group: u64, count: u64, per_key: u64, title: &str) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            let mut secret = [0x5e; 32];
            secret[..16].copy_from_slice(&[group.to_le_bytes(), (n / per_key).to_le_bytes()].concat());
            let author = Identity::from_secret_bytes(secret);
            let listing = manifest(&author.node_id(), &format!("fresh-{group}-{n}"), 1, title);
            listing.sign(&author).unwrap().into_bytes()
        })
        .collect()
}

/// The kinds of bad listing; every one but the replays is refused as invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bad {
    RandomBytes,
    RandomHeader,
    FlippedBody,
    FlippedSignature,
    FlippedHeader,
    Truncated,
    LengthMismatch,
    DeclaredTooLong,
    BodyTooLarge,
    WrongKind,
    NotTheAuthor,
    HijackedPackId,
    SignedMalformed,
    Replay,
    StaleRetraction,
    /// Validly signed by the stranger, dated far in the future (it would pin its
    /// pack at the top of "newest").
    FutureDated,
    /// Over the largest envelope, or the largest manifest with a forged signature.
    Huge,
}

impl Bad {
    pub fn is_replay(self) -> bool {
        matches!(self, Bad::Replay | Bad::StaleRetraction)
    }
}

const MIX: &[Bad] = &[
    Bad::RandomBytes,
    Bad::RandomHeader,
    Bad::FlippedBody,
    Bad::FlippedSignature,
    Bad::FlippedHeader,
    Bad::Truncated,
    Bad::Truncated,
    Bad::LengthMismatch,
    Bad::DeclaredTooLong,
    Bad::BodyTooLarge,
    Bad::WrongKind,
    Bad::NotTheAuthor,
    Bad::HijackedPackId,
    Bad::SignedMalformed,
    Bad::Replay,
    Bad::StaleRetraction,
    Bad::FutureDated,
];

/// Makes bad listings, each different from every other one it made: gossipsub
/// drops a payload it has seen before (the message id is a hash of the data), so a
/// repeat would never reach the victim's verification.
pub struct Forger {
    rng: StdRng,
    /// The author of the victim's pack, whose old versions it replays.
    author: Identity,
    /// A key of the forger's own.
    stranger: Identity,
    pack: PackId,
    n: u64,
    seen: HashSet<[u8; 32]>,
    made: BTreeMap<Bad, u64>,
}

impl Forger {
    pub fn new(seed: u64, author: &Identity, pack: PackId) -> Forger {
        let mut rng = StdRng::seed_from_u64(seed);
        let stranger = Identity::from_secret_bytes(rng.random());
        Forger {
            rng,
            author: author.clone(),
            stranger,
            pack,
            n: 0,
            seen: HashSet::new(),
            made: BTreeMap::new(),
        }
    }

    pub fn next(&mut self) -> Vec<u8> {
        let bad = MIX[self.rng.random_range(0..MIX.len())];
        self.make(bad)
    }

    pub fn make(&mut self, bad: Bad) -> Vec<u8> {
        loop {
            self.n += 1;
            let bytes = self.forge(bad);
            if self.seen.insert(*blake3::hash(&bytes).as_bytes()) {
                *self.made.entry(bad).or_default() += 1;
                return bytes;
            }
        }
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.rng.fill(&mut bytes[..]);
        bytes
    }

    /// A valid listing that the victim would store if it arrived intact: half are
    /// newer versions of the victim's own pack by its author, half packs of a stranger.
    fn valid(&mut self) -> Vec<u8> {
        let n = self.n;
        if self.rng.random_bool(0.5) {
            let newer = manifest(&self.author.node_id(), SLUG, HELD_SEQ + n, &format!("{TITLE} v{n}"));
            newer.sign(&self.author).unwrap().into_bytes()
        } else {
            let theirs =
                manifest(&self.stranger.node_id(), &format!("bait-{n}"), 1 + n % 7, &format!("Bait {n}"));
            theirs.sign(&self.stranger).unwrap().into_bytes()
        }
    }

    fn forge(&mut self, bad: Bad) -> Vec<u8> {
        let n = self.n;
        let header = limits::ENVELOPE_HEADER_BYTES;
        match bad {
            Bad::RandomBytes => {
                let len = self.rng.random_range(1..3000);
                self.random_bytes(len)
            }
            Bad::RandomHeader => {
                let len = self.rng.random_range(0..3000);
                let mut bytes = b"SMPL\x01".to_vec();
                bytes.push(self.rng.random_range(0..=5));
                bytes.extend(self.random_bytes(len));
                bytes
            }
            Bad::FlippedBody | Bad::FlippedSignature | Bad::FlippedHeader => {
                let mut bytes = self.valid();
                let at = match bad {
                    Bad::FlippedBody => self.rng.random_range(header..bytes.len()),
                    Bad::FlippedSignature => self.rng.random_range(38..102),
                    _ => self.rng.random_range(0..header),
                };
                bytes[at] ^= self.rng.random_range(1..=255u8);
                bytes
            }
            Bad::Truncated => {
                let mut bytes = self.valid();
                let len = self.rng.random_range(0..bytes.len());
                bytes.truncate(len);
                bytes
            }
            Bad::LengthMismatch => {
                let mut bytes = self.valid();
                let body = (bytes.len() - header) as i64;
                let declared = loop {
                    let d = body + self.rng.random_range(-body..=200);
                    if d != body {
                        break d as u32;
                    }
                };
                bytes[102..106].copy_from_slice(&declared.to_be_bytes());
                bytes
            }
            Bad::DeclaredTooLong => {
                let mut bytes = self.valid();
                let declared = self.rng.random_range(limits::MAX_MANIFEST_BYTES as u32 + 1..=u32::MAX);
                bytes[102..106].copy_from_slice(&declared.to_be_bytes());
                bytes
            }
            Bad::BodyTooLarge => {
                let (kind, max) = match self.rng.random_range(0..3) {
                    0 => (Kind::Retraction, limits::MAX_SMALL_BODY_BYTES),
                    1 => (Kind::PurchaseRequest, limits::MAX_SMALL_BODY_BYTES),
                    _ => (Kind::LicenseToken, limits::MAX_LICENSE_BYTES),
                };
                let len = max + self.rng.random_range(1..2000);
                let body = self.random_bytes(len);
                let signature: [u8; 64] = std::array::from_fn(|_| self.rng.random());
                envelope::raw(kind, &self.author.node_id(), &signature, len as u32, &body)
            }
            Bad::WrongKind => {
                if self.rng.random_bool(0.5) {
                    // A real license token for the victim's pack, signed by its author.
                    let token = LicenseToken {
                        license_id: LicenseId(self.rng.random()),
                        pack_id: self.pack,
                        slug: SLUG.into(),
                        seq: HELD_SEQ,
                        content: BlobHash([0xc0; 32]),
                        seller: self.author.node_id(),
                        buyer: self.stranger.node_id(),
                        price: None,
                        terms: LicenseTerms::Named("royalty-free".into()),
                        issued_at: 1_700_000_000 + n,
                    };
                    token.sign(&self.author).unwrap().into_bytes()
                } else {
                    let request = PurchaseRequest {
                        buyer_name: None,
                        pack_id: self.pack,
                        seq: HELD_SEQ,
                        buyer: self.stranger.node_id(),
                        seller: self.author.node_id(),
                        price: None,
                        payment_ref: None,
                        nonce: self.rng.random(),
                        created_at: 1_700_000_000 + n,
                    };
                    request.sign(&self.stranger).unwrap().into_bytes()
                }
            }
            Bad::NotTheAuthor => {
                // A newer version, or a retraction, of the victim's pack, naming its
                // author but signed by the stranger.
                let author = self.author.node_id();
                if self.rng.random_bool(0.5) {
                    let forged = manifest(&author, SLUG, HELD_SEQ + n, &format!("Hijacked {n}"));
                    seal_unchecked(&self.stranger, &forged).into_bytes()
                } else {
                    let forged = Retraction {
                        pack_id: self.pack,
                        author,
                        slug: SLUG.into(),
                        seq: HELD_SEQ + n,
                        retracted_at: 1_700_000_000 + n,
                    };
                    seal_unchecked(&self.stranger, &forged).into_bytes()
                }
            }
            Bad::HijackedPackId => {
                // The stranger's own, validly signed manifest claiming the victim's pack id.
                let mut forged = manifest(&self.stranger.node_id(), SLUG, HELD_SEQ + n, &format!("Mine {n}"));
                forged.pack_id = self.pack;
                seal_unchecked(&self.stranger, &forged).into_bytes()
            }
            Bad::SignedMalformed => {
                // Validly signed by the author, but the body is no valid manifest.
                let mut body = manifest(&self.author.node_id(), SLUG, HELD_SEQ + n, TITLE);
                let bytes = match self.rng.random_range(0..5) {
                    0 => {
                        let len = self.rng.random_range(0..2000);
                        self.random_bytes(len)
                    }
                    1 => {
                        let mut json = serde_json::to_value(&body).unwrap();
                        json["smuggled"] = serde_json::json!(n);
                        serde_json::to_vec(&json).unwrap()
                    }
                    2 => {
                        body.title = String::new();
                        serde_json::to_vec(&body).unwrap()
                    }
                    3 => {
                        body.samples.clear();
                        serde_json::to_vec(&body).unwrap()
                    }
                    _ => {
                        body.samples[0].sample_rate = 0;
                        serde_json::to_vec(&body).unwrap()
                    }
                };
                Envelope::seal(&self.author, Kind::Manifest, &bytes).unwrap().into_bytes()
            }
            Bad::Replay => {
                let seq = self.rng.random_range(1..HELD_SEQ);
                let old = manifest(&self.author.node_id(), SLUG, seq, &format!("{TITLE} ({n})"));
                old.sign(&self.author).unwrap().into_bytes()
            }
            Bad::StaleRetraction => {
                let retraction = Retraction {
                    pack_id: self.pack,
                    author: self.author.node_id(),
                    slug: SLUG.into(),
                    seq: self.rng.random_range(1..HELD_SEQ),
                    retracted_at: 1_700_000_000 + n,
                };
                retraction.sign(&self.author).unwrap().into_bytes()
            }
            Bad::FutureDated => {
                let now =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let mut future =
                    manifest(&self.stranger.node_id(), &format!("future-{n}"), 1, &format!("Newest {n}"));
                future.created_at = now + 3600 + self.rng.random_range(0..365 * 86_400);
                future.sign(&self.stranger).unwrap().into_bytes()
            }
            Bad::Huge => {
                // Alternately: one byte over the largest envelope, and the largest
                // manifest body with a forged signature (refused only after hashing it).
                let over = n.is_multiple_of(2);
                let len = limits::MAX_MANIFEST_BYTES + usize::from(over);
                let body = vec![b'{'; len];
                let signature: [u8; 64] = std::array::from_fn(|_| self.rng.random());
                envelope::raw(Kind::Manifest, &self.author.node_id(), &signature, len as u32, &body)
            }
        }
    }

    /// Prints what it forged for `flood`, by kind; returns how many in all, and how
    /// many of them were replays.
    pub fn tally(&self, flood: &str) -> (u64, u64) {
        println!("{flood}: forged {:?}", self.made);
        (self.total(), self.replays())
    }

    fn replays(&self) -> u64 {
        self.made.iter().filter(|(bad, _)| bad.is_replay()).map(|(_, n)| n).sum()
    }

    fn total(&self) -> u64 {
        self.made.values().sum()
    }
}
