//! Pack manifests: a pack's metadata and one entry per sample.

use serde::{Deserialize, Serialize};

use crate::check::{
    check_file_name, check_file_set, check_line, check_pack_id, check_price, check_tags, check_terms,
    check_text,
};
use crate::ids::{hex_decode, hex_encode};
use crate::limits::*;
use crate::{BlobHash, Descriptor, Key, Kind, NodeId, Note, PackId, Signed, Tempo};

/// A signed description of one version of a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub pack_id: PackId,
    pub author: NodeId,
    /// The author's display name.
    pub author_name: String,
    /// Stable short name the pack id derives from.
    pub slug: String,
    /// Version; a higher `seq` from the same author replaces a lower one.
    pub seq: u64,
    pub title: String,
    pub description: String,
    pub genre: String,
    pub tags: Vec<String>,
    /// `None` for a free pack.
    pub price: Option<Price>,
    pub license: LicenseTerms,
    /// Unix seconds.
    pub created_at: u64,
    /// Hash of the iroh-blobs `Collection` (hash sequence) holding the sample files:
    /// the content hash that [`collection`](crate::collection) defines.
    pub content: BlobHash,
    /// A cover image (PNG or JPEG), stored as a blob of the pack's collection.
    pub cover: Option<BlobHash>,
    pub samples: Vec<SampleEntry>,
    /// The first version a licence must be for to cover this one: licences of
    /// earlier versions do not (this version, or one before it, is a paid
    /// upgrade). `None`: a licence of any version of the pack covers this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses_from: Option<u64>,
    /// How to pay the seller, shown to a buyer before buying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentInfo>,
}

/// How a seller is paid, in the seller's words: smpl moves no money.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInfo {
    /// What to do, e.g. "PayPal to ada@example.org with the order id as reference".
    pub text: String,
    /// A page to pay on, `https://…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl PaymentInfo {
    pub fn check(&self) -> Result<(), String> {
        check_text("payment instructions", &self.text, MAX_SHORT_TEXT * 4)?;
        if let Some(url) = &self.url {
            check_line("payment URL", url, MAX_SHORT_TEXT * 2)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("payment URL {url:?} is not an http(s) address"));
            }
        }
        Ok(())
    }
}

/// A price in minor units of a currency (499 USD = $4.99).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub amount_minor: u64,
    pub currency: String,
}

impl Price {
    /// The amount in major units, for display and filters (2 decimals assumed).
    pub fn amount(&self) -> f64 {
        self.amount_minor as f64 / 100.0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02} {}", self.amount_minor / 100, self.amount_minor % 100, self.currency)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LicenseTerms {
    /// A well-known license by name, e.g. `royalty-free`, `CC0-1.0`, `CC-BY-4.0`.
    Named(String),
    /// The author's own terms.
    Custom(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    Wav,
    Flac,
    Aiff,
    Ogg,
    Mp3,
}

impl AudioFormat {
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Flac => "flac",
            AudioFormat::Aiff => "aiff",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Mp3 => "mp3",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SampleKind {
    OneShot,
    Loop,
}

impl SampleKind {
    pub fn name(self) -> &'static str {
        match self {
            SampleKind::OneShot => "one-shot",
            SampleKind::Loop => "loop",
        }
    }
}

/// One audio file of a pack and what analysis found in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleEntry {
    /// Relative path inside the pack, `/`-separated.
    pub name: String,
    pub hash: BlobHash,
    pub size: u64,
    pub format: AudioFormat,
    /// Length in sample frames; duration is `frames / sample_rate`.
    pub frames: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bits per sample of the stored PCM; `None` for lossy formats.
    pub bit_depth: Option<u16>,
    /// Highest absolute sample value, dBFS (−inf for digital silence is stored as −200).
    pub peak_dbfs: f32,
    /// Integrated loudness (EBU R128), `None` when the gate leaves nothing to measure.
    pub loudness_lufs: Option<f32>,
    pub kind: SampleKind,
    pub tempo: Option<Tempo>,
    pub key: Option<Key>,
    /// Root note of a tonal one-shot (absent for anything else, and in manifests
    /// written before root notes existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Note>,
    pub tags: Vec<String>,
    /// Peak envelope for display, one byte per point (0 = silence, 255 = full scale).
    #[serde(with = "hex_bytes")]
    pub waveform: Vec<u8>,
    /// A short always-free clip for auditioning.
    pub preview: Option<BlobHash>,
    /// The sound's fingerprint for "similar sounds" (absent in manifests written
    /// before descriptors existed, or when the analysis found nothing to describe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<Descriptor>,
}

impl SampleEntry {
    /// The checks one sample entry passes; [`Manifest::check`] runs them for each.
    pub fn check(&self) -> Result<(), String> {
        check_file_name(&self.name)?;
        let name = &self.name;
        if self.sample_rate == 0 || self.sample_rate > MAX_SAMPLE_RATE {
            return Err(format!("{name}: sample rate {} is outside 1..={MAX_SAMPLE_RATE}", self.sample_rate));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(format!("{name}: {} channels is outside 1..={MAX_CHANNELS}", self.channels));
        }
        if self.bit_depth.is_some_and(|b| b == 0 || b > 64) {
            return Err(format!("{name}: bit depth is outside 1..=64"));
        }
        if !self.peak_dbfs.is_finite() || self.loudness_lufs.is_some_and(|l| !l.is_finite()) {
            return Err(format!("{name}: peak or loudness is not a finite number"));
        }
        if let Some(t) = &self.tempo
            && !((MIN_BPM..=MAX_BPM).contains(&t.bpm) && (0.0..=1.0).contains(&t.confidence))
        {
            return Err(format!(
                "{name}: tempo {} BPM (confidence {}) is outside {MIN_BPM}..={MAX_BPM} BPM \
                 or 0..=1",
                t.bpm, t.confidence
            ));
        }
        if self.key.is_some_and(|k| k.tonic > 11) {
            return Err(format!("{name}: key tonic is outside 0..=11"));
        }
        if self.note.is_some_and(|n| n.pitch_class > 11 || n.octave.is_some_and(|o| !(-1..=9).contains(&o))) {
            return Err(format!("{name}: root note is outside pitch classes 0..=11 or octaves -1..=9"));
        }
        check_tags(name, &self.tags)?;
        if self.waveform.len() > MAX_WAVEFORM_POINTS {
            return Err(format!(
                "{name}: waveform has {} points, over the limit of {MAX_WAVEFORM_POINTS}",
                self.waveform.len()
            ));
        }
        Ok(())
    }

    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            0
        } else {
            let ms = self.frames as u128 * 1000 / self.sample_rate as u128;
            u64::try_from(ms).unwrap_or(u64::MAX)
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex_encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::hex_decode(&s).map_err(serde::de::Error::custom)
    }
}

/// One spelling per genre, so filters and facets treat the ways producers write a
/// genre as one: lowercase words joined by single spaces, with `-`, `_` and `/`
/// read as spaces, and common one-word spellings of two-word genres split
/// (`hiphop`, `hip-hop` and `Hip Hop` are all `hip hop`).
pub fn normalize_genre(genre: &str) -> String {
    let spaced: String =
        genre.to_lowercase().chars().map(|c| if matches!(c, '-' | '_' | '/') { ' ' } else { c }).collect();
    let joined = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    let canonical = match joined.as_str() {
        "hiphop" => "hip hop",
        "lofi" => "lo fi",
        "triphop" => "trip hop",
        "drumnbass" | "drum n bass" | "drum & bass" | "dnb" | "d&b" => "drum and bass",
        "rnb" | "r & b" | "r'n'b" => "r&b",
        "ukg" => "uk garage",
        "synth wave" => "synthwave",
        "dub step" => "dubstep",
        _ => return joined,
    };
    canonical.to_string()
}

/// Makes a slug from a title: lowercase ASCII letters and digits joined by `-`.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(MAX_SLUG).collect();
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() { "pack".to_string() } else { slug }
}

impl Manifest {
    /// The semantic checks every accepted manifest passes (see [`crate::limits`]).
    pub fn check(&self) -> Result<(), String> {
        check_pack_id(&self.pack_id, &self.author, &self.slug)?;
        check_line("author name", &self.author_name, MAX_SHORT_TEXT)?;
        if self.title.trim().is_empty() {
            return Err("title is empty".into());
        }
        check_line("title", &self.title, MAX_SHORT_TEXT)?;
        check_text("description", &self.description, MAX_LONG_TEXT)?;
        check_line("genre", &self.genre, MAX_SHORT_TEXT)?;
        check_tags("pack", &self.tags)?;
        check_price(self.price.as_ref())?;
        check_terms(&self.license)?;
        if let Some(payment) = &self.payment {
            payment.check()?;
        }
        if self.licenses_from.is_some_and(|from| from > self.seq) {
            return Err(format!("licenses_from {:?} is after the version {}", self.licenses_from, self.seq));
        }
        if self.samples.is_empty() {
            return Err("pack has no samples".into());
        }
        if self.samples.len() > MAX_SAMPLES {
            return Err(format!("pack has {} samples, over the limit of {MAX_SAMPLES}", self.samples.len()));
        }
        for sample in &self.samples {
            sample.check()?;
        }
        check_file_set(self.samples.iter().map(|s| s.name.as_str()))
    }

    pub fn is_free(&self) -> bool {
        self.price.is_none()
    }

    /// Whether a licence of version `seq` of this pack covers this version.
    pub fn covered_by(&self, seq: u64) -> bool {
        seq <= self.seq && seq >= self.licenses_from.unwrap_or(0)
    }
}

impl Signed for Manifest {
    const KIND: Kind = Kind::Manifest;

    fn expected_signer(&self) -> NodeId {
        self.author
    }

    fn validate(&self) -> Result<(), String> {
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn slugify_examples() {
        for (title, slug) in [
            ("Dusty 808s", "dusty-808s"),
            ("  Dusty   808s!! Vol. 2 ", "dusty-808s-vol-2"),
            ("LO-FI / Tape_Loops", "lo-fi-tape-loops"),
            ("Café Beats", "caf-beats"),
            ("---", "pack"),
            ("", "pack"),
            ("日本語", "pack"),
            ("ÀB", "b"),
        ] {
            assert_eq!(slugify(title), slug, "{title:?}");
        }
        let long = slugify(&"ab ".repeat(100));
        assert!(long.len() <= MAX_SLUG && !long.ends_with('-'), "{long}");
    }

    proptest! {
        #[test]
        fn slugify_always_gives_a_valid_slug(title in "\\PC{0,300}") {
            let slug = slugify(&title);
            prop_assert!(crate::check::check_slug(&slug).is_ok(), "{:?}", slug);
            prop_assert!(!slug.starts_with('-') && !slug.ends_with('-') && !slug.contains("--"));
            prop_assert_eq!(slugify(&slug), slug.clone());
        }
    }

    #[test]
    fn genres_have_one_spelling() {
        for spelling in ["hiphop", "hip-hop", "Hip Hop", "  HIP_hop ", "hip/hop"] {
            assert_eq!(normalize_genre(spelling), "hip hop", "{spelling:?}");
        }
        assert_eq!(normalize_genre("Lo-Fi"), normalize_genre("lofi"));
        assert_eq!(normalize_genre("DnB"), "drum and bass");
        assert_eq!(normalize_genre("Techno"), "techno");
        assert_eq!(normalize_genre(""), "");
    }

    #[test]
    fn price_display() {
        let p = Price { amount_minor: 499, currency: "USD".into() };
        assert_eq!(p.to_string(), "4.99 USD");
        assert_eq!(p.amount(), 4.99);
        let p = Price { amount_minor: 1005, currency: "EUR".into() };
        assert_eq!(p.to_string(), "10.05 EUR");
    }

    #[test]
    fn names_and_durations() {
        assert_eq!(SampleKind::OneShot.name(), "one-shot");
        assert_eq!(serde_json::to_string(&SampleKind::OneShot).unwrap(), "\"one-shot\"");
        assert_eq!(AudioFormat::Aiff.name(), "aiff");
        let mut s = SampleEntry {
            name: "x.wav".into(),
            hash: BlobHash([0; 32]),
            size: 0,
            format: AudioFormat::Wav,
            frames: 66_150,
            sample_rate: 44_100,
            channels: 1,
            bit_depth: Some(16),
            peak_dbfs: 0.0,
            loudness_lufs: None,
            kind: SampleKind::OneShot,
            tempo: None,
            key: None,
            note: None,
            tags: vec![],
            waveform: vec![],
            preview: None,
            descriptor: None,
        };
        assert_eq!(s.duration_ms(), 1500);
        s.sample_rate = 0;
        assert_eq!(s.duration_ms(), 0);
        s.sample_rate = 1;
        s.frames = u64::MAX;
        assert_eq!(s.duration_ms(), u64::MAX, "saturates, never wraps");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// f32 fields survive the JSON round trip bit for bit.
        #[test]
        fn f32_json_round_trip(x in any::<f32>().prop_filter("finite", |x| x.is_finite())) {
            let json = serde_json::to_string(&x).unwrap();
            let back: f32 = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.to_bits(), x.to_bits(), "{}", json);
        }
    }
}
