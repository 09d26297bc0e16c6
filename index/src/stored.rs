//! The stored part of a sample document: what a hit shows, in a compact binary
//! record (JSON cost more than the rest of indexing a document).
//!
//! Layout, all integers little-endian: version byte `2`; pack id (16 bytes);
//! author (32); `created_at` u64; `duration_ms` u64; flags u8 (1 loop, 2 bpm,
//! 4 key, 8 price, 16 root note); bpm f32 if flagged; key tonic u8 and mode u8 (0
//! major, 1 minor) if flagged; root note pitch class u8 and octave i8 (−128 when
//! unknown) if flagged; price amount u64 and currency string if flagged; then the
//! strings pack title, author name, sample name and genre. A string is a u32 byte
//! length and UTF-8 bytes.

use smpl_protocol::{Key, Mode, NodeId, Note, PackId, Price, SampleEntry, SampleKind, Source};

use crate::results::Hit;

const VERSION: u8 = 2;
const LOOP: u8 = 1;
const BPM: u8 = 2;
const KEY: u8 = 4;
const PRICE: u8 = 8;
const NOTE: u8 = 16;
/// The stored octave of a root note whose octave is unknown.
const NO_OCTAVE: i8 = i8::MIN;

/// The pack-level part shared by every sample of a pack.
pub(crate) struct PackRecord<'a> {
    pub pack_id: &'a PackId,
    pub author: &'a NodeId,
    pub created_at: u64,
    pub price: Option<&'a Price>,
    pub title: &'a str,
    pub author_name: &'a str,
    pub genre: &'a str,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encodes the hit of sample `s` of pack `p` into `out` (cleared first).
pub(crate) fn encode(p: &PackRecord<'_>, s: &SampleEntry, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    out.extend_from_slice(p.pack_id.as_bytes());
    out.extend_from_slice(p.author.as_bytes());
    out.extend_from_slice(&p.created_at.to_le_bytes());
    out.extend_from_slice(&s.duration_ms().to_le_bytes());
    let bpm = s.tempo.map(|t| t.bpm).filter(|b| b.is_finite());
    let mut flags = 0;
    if s.kind == SampleKind::Loop {
        flags |= LOOP;
    }
    if bpm.is_some() {
        flags |= BPM;
    }
    if s.key.is_some() {
        flags |= KEY;
    }
    if p.price.is_some() {
        flags |= PRICE;
    }
    if s.note.is_some() {
        flags |= NOTE;
    }
    out.push(flags);
    if let Some(b) = bpm {
        out.extend_from_slice(&b.to_le_bytes());
    }
    if let Some(k) = s.key {
        out.push(k.tonic);
        out.push(u8::from(k.mode == Mode::Minor));
    }
    if let Some(n) = s.note {
        out.push(n.pitch_class);
        out.extend_from_slice(&n.octave.unwrap_or(NO_OCTAVE).to_le_bytes());
    }
    if let Some(price) = p.price {
        out.extend_from_slice(&price.amount_minor.to_le_bytes());
        put_str(out, &price.currency);
    }
    put_str(out, p.title);
    put_str(out, p.author_name);
    put_str(out, &s.name);
    put_str(out, p.genre);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("record ends {} bytes early", n - self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}

/// Decodes a record into a hit with `score`.
pub(crate) fn decode(bytes: &[u8], score: f32) -> Result<Hit, String> {
    let mut r = Reader(bytes);
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!("unknown record version {version}"));
    }
    let pack_id = PackId(r.array()?);
    let author = NodeId(r.array()?);
    let created_at = r.u64()?;
    let duration_ms = r.u64()?;
    let flags = r.u8()?;
    let bpm = if flags & BPM != 0 { Some(f32::from_le_bytes(r.array()?)) } else { None };
    let key = if flags & KEY != 0 {
        let tonic = r.u8()?;
        let mode = if r.u8()? == 1 { Mode::Minor } else { Mode::Major };
        if tonic > 11 {
            return Err(format!("key tonic {tonic} out of range"));
        }
        Some(Key { tonic, mode, source: Source::Detected }.name())
    } else {
        None
    };
    let note = if flags & NOTE != 0 {
        let pitch_class = r.u8()?;
        let octave = i8::from_le_bytes(r.array()?);
        if pitch_class > 11 {
            return Err(format!("root note pitch class {pitch_class} out of range"));
        }
        Some(Note { pitch_class, octave: (octave != NO_OCTAVE).then_some(octave), source: Source::Detected })
    } else {
        None
    };
    let price = if flags & PRICE != 0 {
        let amount_minor = r.u64()?;
        Some(Price { amount_minor, currency: r.string()? })
    } else {
        None
    };
    Ok(Hit {
        pack_id,
        pack_title: r.string()?,
        author,
        author_name: r.string()?,
        sample: Some(r.string()?),
        kind: Some(if flags & LOOP != 0 { SampleKind::Loop } else { SampleKind::OneShot }),
        bpm,
        // A root note shows as its pitch class where a key would (`C`, beside `Cm`).
        key: key.or(note.map(|n| n.name())),
        note: note.map(|n| n.full_name()),
        duration_ms: Some(duration_ms),
        price,
        genre: r.string()?,
        score,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smpl_protocol::{AudioFormat, BlobHash, Tempo};

    fn entry() -> SampleEntry {
        SampleEntry {
            name: "Loops/Dusty_Chord_Loop_90_Am.wav".into(),
            hash: BlobHash([1; 32]),
            size: 10,
            format: AudioFormat::Wav,
            frames: 88_200,
            sample_rate: 44_100,
            channels: 2,
            bit_depth: Some(24),
            peak_dbfs: -1.0,
            loudness_lufs: None,
            kind: SampleKind::Loop,
            tempo: Some(Tempo { bpm: 90.5, source: Source::Detected, confidence: 1.0 }),
            key: Some(Key { tonic: 9, mode: Mode::Minor, source: Source::Stated }),
            note: None,
            tags: vec![],
            waveform: vec![],
            preview: None,
            descriptor: None,
        }
    }

    #[test]
    fn round_trip_and_truncation() {
        let price = Price { amount_minor: 499, currency: "USD".into() };
        let p = PackRecord {
            pack_id: &PackId([3; 16]),
            author: &NodeId([4; 32]),
            created_at: 1_700_000_000,
            price: Some(&price),
            title: "Dusty Keys",
            author_name: "Marla",
            genre: "Hip Hop",
        };
        let mut buf = Vec::new();
        encode(&p, &entry(), &mut buf);
        let hit = decode(&buf, 1.5).unwrap();
        assert_eq!(hit.pack_id, PackId([3; 16]));
        assert_eq!(hit.author, NodeId([4; 32]));
        assert_eq!(hit.sample.as_deref(), Some("Loops/Dusty_Chord_Loop_90_Am.wav"));
        assert_eq!((hit.kind, hit.bpm, hit.key.as_deref()), (Some(SampleKind::Loop), Some(90.5), Some("Am")));
        assert_eq!((hit.duration_ms, hit.price, hit.score), (Some(2000), Some(price.clone()), 1.5));
        assert_eq!(
            (hit.pack_title.as_str(), hit.author_name.as_str(), hit.genre.as_str()),
            ("Dusty Keys", "Marla", "Hip Hop")
        );
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], 0.0).is_err(), "cut at {cut}");
        }
        buf[0] = 9;
        assert!(decode(&buf, 0.0).unwrap_err().contains("version"));
    }

    #[test]
    fn a_root_note_shows_as_its_pitch_class() {
        let p = PackRecord {
            pack_id: &PackId([3; 16]),
            author: &NodeId([4; 32]),
            created_at: 1,
            price: None,
            title: "Keys",
            author_name: "Marla",
            genre: "",
        };
        let mut buf = Vec::new();
        for (octave, full) in [(Some(2), "C#2"), (None, "C#")] {
            let s = SampleEntry {
                kind: SampleKind::OneShot,
                key: None,
                note: Some(Note { pitch_class: 1, octave, source: Source::Detected }),
                ..entry()
            };
            encode(&p, &s, &mut buf);
            let hit = decode(&buf, 0.0).unwrap();
            assert_eq!((hit.key.as_deref(), hit.note.as_deref()), (Some("C#"), Some(full)));
            for cut in 0..buf.len() {
                assert!(decode(&buf[..cut], 0.0).is_err(), "cut at {cut}");
            }
        }
        // A key, when there is one, is what the key column shows.
        let both = SampleEntry {
            note: Some(Note { pitch_class: 4, octave: None, source: Source::Detected }),
            ..entry()
        };
        encode(&p, &both, &mut buf);
        let hit = decode(&buf, 0.0).unwrap();
        assert_eq!((hit.key.as_deref(), hit.note.as_deref()), (Some("Am"), Some("E")));
    }
}
