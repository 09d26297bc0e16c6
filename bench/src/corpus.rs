//! A synthetic but realistic catalog of sample packs, and queries against it.
//!
//! Packs look like what producers publish: "Dusty Drums Vol 3" by "Marla Beats",
//! genre "hip hop", tags "dusty, vinyl", samples such as `Dusty_808_Kick_03.wav`
//! or `Loops/Warm_Chord_Loop_90_Am.wav`. Everything derives from the seed and the
//! pack number, so any pack can be regenerated on demand without keeping the corpus
//! in memory, and every engine indexes exactly the same data.

use smpl_protocol::{
    AudioFormat, BlobHash, DESCRIPTOR_DIMS, Descriptor, Key, LicenseTerms, Manifest, Mode, NodeId, PackId,
    Price, SampleEntry, SampleKind, Source, Tempo,
};

use crate::rng::Rng;

pub const GENRES: &[&str] = &[
    "hip hop",
    "trap",
    "boom bap",
    "lo-fi",
    "techno",
    "house",
    "deep house",
    "drum and bass",
    "dubstep",
    "ambient",
    "pop",
    "r&b",
    "afrobeats",
    "reggaeton",
    "garage",
    "jazz",
    "cinematic",
    "synthwave",
];

pub const TAGS: &[&str] = &[
    "dusty",
    "analog",
    "vinyl",
    "warm",
    "dark",
    "bright",
    "punchy",
    "crisp",
    "gritty",
    "tape",
    "saturated",
    "clean",
    "wide",
    "mono",
    "stereo",
    "live",
    "processed",
    "organic",
    "lofi",
    "vintage",
    "modern",
    "hard",
    "soft",
    "deep",
    "airy",
    "glitchy",
    "distorted",
    "filtered",
    "reversed",
    "layered",
    "acoustic",
    "electric",
    "synth",
    "sampled",
    "chopped",
    "melodic",
    "rhythmic",
    "atmospheric",
    "cinematic",
    "minimal",
];

pub const ADJECTIVES: &[&str] = &[
    "Dusty", "Analog", "Midnight", "Golden", "Vintage", "Heavy", "Crisp", "Warm", "Dark", "Bright", "Deep",
    "Raw", "Gritty", "Smooth", "Neon", "Cosmic", "Urban", "Tape", "Velvet", "Crunchy", "Hazy", "Liquid",
    "Frozen", "Electric", "Organic", "Punchy", "Silky", "Broken", "Hollow", "Rusty", "Lush", "Dirty",
    "Clean", "Fat", "Thin", "Wide", "Tight", "Loose", "Soulful", "Wonky",
];

const NOUNS: &[&str] = &[
    "Drums",
    "Kicks",
    "Loops",
    "Textures",
    "Vibes",
    "Grooves",
    "Essentials",
    "Toolkit",
    "Sessions",
    "Chops",
    "Keys",
    "Basslines",
    "Atmospheres",
    "Percussion",
    "Vocals",
    "Synths",
    "Breaks",
    "One Shots",
];

/// Instruments: (name in file names, melodic, usually a loop).
pub const INSTRUMENTS: &[(&str, bool, bool)] = &[
    ("Kick", false, false),
    ("808", true, false),
    ("Snare", false, false),
    ("Clap", false, false),
    ("Hat", false, false),
    ("Conga", false, false),
    ("Cymbal", false, false),
    ("Crash", false, false),
    ("Ride", false, false),
    ("Tom", false, false),
    ("Perc", false, false),
    ("Shaker", false, false),
    ("Rim", false, false),
    ("Drum", false, true),
    ("Break", false, true),
    ("Top", false, true),
    ("Bass", true, true),
    ("Sub", true, false),
    ("Synth", true, true),
    ("Pad", true, true),
    ("Lead", true, true),
    ("Pluck", true, false),
    ("Chord", true, true),
    ("Keys", true, true),
    ("Piano", true, true),
    ("Rhodes", true, true),
    ("Organ", true, true),
    ("Guitar", true, true),
    ("Vocal", true, true),
    ("Vox", true, false),
    ("Chop", true, false),
    ("FX", false, false),
    ("Riser", false, false),
    ("Impact", false, false),
    ("Sweep", false, false),
    ("Texture", true, true),
    ("Drone", true, true),
    ("Arp", true, true),
    ("Bell", true, false),
    ("Brass", true, true),
    ("Strings", true, true),
    ("Flute", true, true),
];

const VARIANTS: &[&str] =
    &["Hard", "Soft", "Short", "Long", "Tight", "Open", "Closed", "Layered", "Room", "Dry", "Wet"];

const FIRST_NAMES: &[&str] = &[
    "Marla", "Kaito", "Ines", "Dmitri", "Ayo", "Lena", "Mateo", "Yuki", "Noor", "Felix", "Sana", "Omar",
    "Priya", "Jonas", "Zola", "Theo", "Mira", "Rafael", "Hana", "Leo", "Nadia", "Kofi", "Elif", "Bruno",
];

const SUFFIXES: &[&str] = &["Beats", "Audio", "Sounds", "Records", "Lab", "Music", "", ""];

const DESCRIPTION_WORDS: &[&str] = &[
    "recorded",
    "through",
    "a",
    "vintage",
    "console",
    "tape",
    "machine",
    "with",
    "hardware",
    "compression",
    "every",
    "sound",
    "is",
    "mixed",
    "and",
    "ready",
    "for",
    "your",
    "next",
    "beat",
    "crafted",
    "from",
    "modular",
    "synths",
    "drum",
    "machines",
    "field",
    "recordings",
    "royalty",
    "free",
    "processed",
    "by",
    "hand",
    "perfect",
    "heavy",
    "grooves",
    "late",
    "night",
    "sessions",
    "studio",
    "warmth",
    "character",
    "texture",
    "punch",
    "clarity",
    "layers",
    "inspired",
    "classic",
    "records",
    "producers",
    "who",
    "want",
    "quality",
];

const PRICES: &[u64] = &[99, 299, 499, 999, 1499, 1999, 2999];

const STREAM_AUTHOR: u64 = 1;
const STREAM_PACK: u64 = 2;
const STREAM_QUERY: u64 = 3;

/// The catalog: `docs` samples in packs of `per_pack`.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub docs: usize,
    pub per_pack: usize,
    pub seed: u64,
    authors: usize,
}

impl Corpus {
    pub fn new(docs: usize, per_pack: usize, seed: u64) -> Corpus {
        let per_pack = per_pack.max(1);
        let packs = docs.div_ceil(per_pack);
        Corpus { docs, per_pack, seed, authors: (packs / 5).max(1) }
    }

    pub fn packs(&self) -> usize {
        self.docs.div_ceil(self.per_pack)
    }

    fn author(&self, a: usize) -> (NodeId, String) {
        let mut r = Rng::for_item(self.seed, STREAM_AUTHOR, a as u64);
        let mut id = [0u8; 32];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&r.next_u64().to_le_bytes());
        }
        let first = r.pick(FIRST_NAMES);
        let suffix = r.pick(SUFFIXES);
        let name = if suffix.is_empty() {
            format!("{first} {}", r.range(1, 99))
        } else {
            format!("{first} {suffix}")
        };
        (NodeId(id), name)
    }

    /// Pack number `i` (0-based), always the same for the same seed.
    pub fn pack(&self, i: usize) -> Manifest {
        let mut r = Rng::for_item(self.seed, STREAM_PACK, i as u64);
        let (author, author_name) = self.author(r.below(self.authors));
        let theme = *r.pick(ADJECTIVES);
        let title = format!("{theme} {} Vol {}", r.pick(NOUNS), r.range(1, 9));
        let slug = format!("pack-{i}");
        let genre = r.pick(GENRES).to_string();
        let tag_count = r.range(2, 4) as usize;
        let tags: Vec<String> = r.pick_distinct(TAGS, tag_count).into_iter().map(String::from).collect();
        let words = r.range(12, 25) as usize;
        let description = (0..words).map(|_| *r.pick(DESCRIPTION_WORDS)).collect::<Vec<_>>().join(" ");
        let price = (!r.chance(0.3)).then(|| Price { amount_minor: *r.pick(PRICES), currency: "USD".into() });
        let folders = r.chance(0.3);
        let tempo_base = r.range(70, 160) as f32;
        let count = self.per_pack.min(self.docs - i * self.per_pack);
        let mut samples = Vec::with_capacity(count);
        for n in 0..count {
            samples.push(sample(&mut r, theme, n, folders, tempo_base));
        }
        Manifest {
            pack_id: PackId::derive(&author, &slug),
            author,
            author_name,
            slug,
            seq: 1,
            title,
            description,
            genre,
            tags,
            price,
            license: LicenseTerms::Named("royalty-free".into()),
            created_at: 1_600_000_000 + i as u64 * 3_000 + r.range(0, 2_000),
            content: BlobHash([0; 32]),
            cover: None,
            licenses_from: None,
            payment: None,
            samples,
        }
    }

    /// `n` benchmark queries, always the same for the same seed.
    pub fn queries(&self, n: usize) -> Vec<BenchQuery> {
        (0..n).map(|i| BenchQuery::generate(&mut Rng::for_item(self.seed, STREAM_QUERY, i as u64))).collect()
    }
}

fn sample(r: &mut Rng, theme: &str, n: usize, folders: bool, tempo_base: f32) -> SampleEntry {
    let (instrument, melodic, loops) = *r.pick(INSTRUMENTS);
    let is_loop = r.chance(if loops { 0.7 } else { 0.15 });
    let adjective = if r.chance(0.6) { theme } else { *r.pick(ADJECTIVES) };
    let key = (melodic && r.chance(if is_loop { 0.8 } else { 0.5 })).then(|| Key {
        tonic: r.below(12) as u8,
        mode: if r.chance(0.6) { Mode::Minor } else { Mode::Major },
        source: Source::Detected,
    });
    let bpm = is_loop.then(|| (tempo_base + r.range(0, 20) as f32).round());
    let mut name = String::new();
    if folders {
        name.push_str(if is_loop { "Loops/" } else { "One Shots/" });
    }
    name.push_str(adjective);
    name.push('_');
    name.push_str(instrument);
    if is_loop {
        name.push_str(&format!("_Loop_{}", bpm.unwrap_or(120.0)));
        if let Some(k) = &key {
            name.push('_');
            name.push_str(&k.name().replace('#', "s"));
        }
    } else if r.chance(0.5) {
        name.push('_');
        let variant: &&str = r.pick(VARIANTS);
        name.push_str(variant);
    }
    name.push_str(&format!("_{:02}.wav", n + 1));
    let frames = if is_loop { r.range(4 * 44_100, 16 * 44_100) } else { r.range(4_410, 2 * 44_100) };
    SampleEntry {
        name,
        hash: BlobHash([n as u8; 32]),
        size: frames * 4,
        format: AudioFormat::Wav,
        frames,
        sample_rate: 44_100,
        channels: 2,
        bit_depth: Some(24),
        peak_dbfs: -0.3,
        loudness_lufs: Some(-14.0),
        kind: if is_loop { SampleKind::Loop } else { SampleKind::OneShot },
        tempo: bpm.map(|bpm| Tempo { bpm, source: Source::Detected, confidence: 0.8 }),
        key,
        note: None,
        tags: {
            let n = r.below(3);
            r.pick_distinct(TAGS, n).into_iter().map(String::from).collect()
        },
        waveform: Vec::new(),
        preview: None,
        descriptor: Some(descriptor(r, instrument)),
    }
}

/// A sound descriptor like real ones: each instrument has its own centre (as kicks,
/// hats and pads sit apart in descriptor space) and samples scatter around it by
/// about one standard deviation (32 steps) per dimension.
fn descriptor(r: &mut Rng, instrument: &str) -> Descriptor {
    let centre = blake3::hash(instrument.as_bytes());
    let mut d = [0i8; DESCRIPTOR_DIMS];
    for (i, v) in d.iter_mut().enumerate() {
        let base = i32::from(centre.as_bytes()[i] as i8) / 2;
        let noise = r.range(0, 65) as i32 - 32;
        *v = (base + noise).clamp(-127, 127) as i8;
    }
    Descriptor(d)
}

/// One benchmark query: 1–2 words and at least one filter.
#[derive(Clone, Debug, Default)]
pub struct BenchQuery {
    pub words: Vec<String>,
    pub genre: Option<String>,
    pub kind: Option<SampleKind>,
    pub bpm: Option<(f32, f32)>,
    pub max_price: Option<f64>,
}

impl BenchQuery {
    fn generate(r: &mut Rng) -> BenchQuery {
        let word = |r: &mut Rng| -> String {
            match r.below(3) {
                0 => r.pick(INSTRUMENTS).0.to_lowercase(),
                1 => r.pick(ADJECTIVES).to_lowercase(),
                _ => r.pick(TAGS).to_string(),
            }
        };
        let mut words = vec![word(r)];
        if r.chance(0.5) {
            let second = word(r);
            if second != words[0] {
                words.push(second);
            }
        }
        let mut q = BenchQuery {
            words,
            genre: r.chance(0.5).then(|| r.pick(GENRES).to_string()),
            kind: r.chance(0.5).then(|| if r.chance(0.5) { SampleKind::Loop } else { SampleKind::OneShot }),
            bpm: r.chance(0.35).then(|| {
                let lo = r.range(70, 160) as f32;
                (lo, lo + r.range(5, 20) as f32)
            }),
            max_price: r.chance(0.35).then(|| *r.pick(&[0.0, 5.0, 10.0, 20.0])),
        };
        if q.genre.is_none() && q.kind.is_none() && q.bpm.is_none() && q.max_price.is_none() {
            q.genre = Some(r.pick(GENRES).to_string());
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_are_deterministic_valid_and_sized() {
        let c = Corpus::new(250, 100, 7);
        assert_eq!(c.packs(), 3);
        let a = c.pack(1);
        assert_eq!(a, c.pack(1));
        assert_eq!(a.samples.len(), 100);
        assert_eq!(c.pack(2).samples.len(), 50);
        for i in 0..3 {
            c.pack(i).check().unwrap();
        }
        assert_eq!(c.queries(5).len(), 5);
    }
}
