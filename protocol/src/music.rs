//! Musical facts about a sample: tempo, key or root note, stated by the producer, read
//! from the file name, or detected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The producer said so when publishing (for the whole pack), or in a file name
    /// (manifests written before `name` existed use `stated` for both).
    Stated,
    /// An analyser detected it.
    Detected,
    /// The file's name says so, e.g. `Rollin 128.wav` or `Bass_Amin.wav`.
    Name,
}

/// A tempo in beats per minute.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tempo {
    pub bpm: f32,
    pub source: Source,
    /// 0..=1 for detected values, 1 for stated ones.
    pub confidence: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Major,
    Minor,
}

/// A musical key: tonic pitch class (0 = C … 11 = B) and mode. Text form `C`, `F#m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub tonic: u8,
    pub mode: Mode,
    pub source: Source,
}

const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

impl Key {
    /// The canonical short name, e.g. `Am`, `F#`.
    pub fn name(&self) -> String {
        let tonic = NAMES[(self.tonic % 12) as usize];
        match self.mode {
            Mode::Major => tonic.to_string(),
            Mode::Minor => format!("{tonic}m"),
        }
    }

    /// The relative major of a minor key, or the relative minor of a major one
    /// (A minor and C major share their notes).
    pub fn relative(&self) -> Key {
        match self.mode {
            Mode::Minor => Key { tonic: (self.tonic + 3) % 12, mode: Mode::Major, ..*self },
            Mode::Major => Key { tonic: (self.tonic + 9) % 12, mode: Mode::Minor, ..*self },
        }
    }

    /// The keys that mix well with this one (its neighbours on the circle of
    /// fifths, as DJs' "Camelot wheel" has them): itself, its relative, and the keys
    /// a fifth up and a fifth down in the same mode.
    pub fn compatible(&self) -> [Key; 4] {
        let shifted = |by: u8| Key { tonic: (self.tonic + by) % 12, ..*self };
        [*self, self.relative(), shifted(7), shifted(5)]
    }

    /// Parses `A minor`, `Amin`, `Am`, `a`, `Bb major`, `F#m`… as a stated key.
    pub fn parse(s: &str) -> Result<Key, ProtocolError> {
        let err = |reason| ProtocolError::Parse { what: "key", input: s.chars().take(40).collect(), reason };
        let t = s.trim();
        let mut chars = t.chars();
        let letter = chars.next().ok_or_else(|| err("empty"))?;
        let base: i32 = match letter.to_ascii_uppercase() {
            'C' => 0,
            'D' => 2,
            'E' => 4,
            'F' => 5,
            'G' => 7,
            'A' => 9,
            'B' => 11,
            _ => return Err(err("expected a note name A–G")),
        };
        let rest = chars.as_str();
        let (shift, rest) = if let Some(r) = rest.strip_prefix('#') {
            (1, r)
        } else if let Some(r) = rest.strip_prefix('♯') {
            (1, r)
        } else if let Some(r) = rest.strip_prefix('b') {
            (-1, r)
        } else if let Some(r) = rest.strip_prefix('♭') {
            (-1, r)
        } else {
            (0, rest)
        };
        let mode = match rest.trim().to_ascii_lowercase().as_str() {
            "" | "maj" | "major" => Mode::Major,
            "m" | "min" | "minor" => Mode::Minor,
            _ => return Err(err("expected major or minor")),
        };
        Ok(Key { tonic: (base + shift).rem_euclid(12) as u8, mode, source: Source::Stated })
    }
}

/// The pitch of a one-shot: a pitch class and, where clear, its octave. A single note
/// has no mode, so it is not a [`Key`]; a key filter matches it by its tonic. Text form
/// `C`, `F#`, or with the octave `F#2` (scientific pitch, C4 is middle C).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// 0 = C … 11 = B.
    pub pitch_class: u8,
    /// Scientific octave, `-1..=9`; absent when only the pitch class is sure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub octave: Option<i8>,
    pub source: Source,
}

impl Note {
    /// The pitch class alone, e.g. `C`, `F#`: how search results show a note.
    pub fn name(&self) -> String {
        NAMES[(self.pitch_class % 12) as usize].to_string()
    }

    /// With the octave where known, e.g. `F#2`.
    pub fn full_name(&self) -> String {
        match self.octave {
            Some(octave) => format!("{}{octave}", self.name()),
            None => self.name(),
        }
    }

    /// Whether a key filter for `key` takes this note: a note matches every key
    /// with its pitch class as tonic, major or minor.
    pub fn matches(&self, key: &Key) -> bool {
        self.pitch_class % 12 == key.tonic % 12
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Key {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Key::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(s: &str) -> (u8, Mode) {
        let k = Key::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(k.source, Source::Stated);
        (k.tonic, k.mode)
    }

    #[test]
    fn parses_common_spellings() {
        use Mode::*;
        for (s, want) in [
            ("A minor", (9, Minor)),
            ("Amin", (9, Minor)),
            ("Am", (9, Minor)),
            ("am", (9, Minor)),
            ("a", (9, Major)),
            ("A", (9, Major)),
            ("A Major", (9, Major)),
            ("Amaj", (9, Major)),
            ("Bb major", (10, Major)),
            ("B♭m", (10, Minor)),
            ("F#m", (6, Minor)),
            ("F♯ minor", (6, Minor)),
            ("  C  ", (0, Major)),
            ("Cb", (11, Major)),
            ("B#", (0, Major)),
            ("E#m", (5, Minor)),
            ("Gbm", (6, Minor)),
        ] {
            assert_eq!(key(s), want, "{s:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        for bad in ["", "   ", "H", "X minor", "A dorian", "Am7", "A##", "123", "ø"] {
            let err = Key::parse(bad).unwrap_err();
            assert!(matches!(err, ProtocolError::Parse { what: "key", .. }), "{bad:?}");
        }
    }

    #[test]
    fn relative_and_compatible_keys() {
        let am = Key::parse("Am").unwrap();
        assert_eq!(am.relative().name(), "C");
        assert_eq!(am.relative().relative(), am);
        let names: Vec<String> = am.compatible().iter().map(Key::name).collect();
        assert_eq!(names, ["Am", "C", "Em", "Dm"]);
        let names: Vec<String> = Key::parse("F#").unwrap().compatible().iter().map(Key::name).collect();
        assert_eq!(names, ["F#", "D#m", "C#", "B"]);
    }

    #[test]
    fn names() {
        let k = |tonic, mode| Key { tonic, mode, source: Source::Detected };
        assert_eq!(k(9, Mode::Minor).to_string(), "Am");
        assert_eq!(k(6, Mode::Major).name(), "F#");
        assert_eq!(k(0, Mode::Major).name(), "C");
        // Out-of-range tonics (refused by manifest checks) never panic.
        assert_eq!(k(200, Mode::Major).name(), NAMES[200 % 12]);
    }

    #[test]
    fn notes_show_a_pitch_class_and_match_keys_by_tonic() {
        let c3 = Note { pitch_class: 0, octave: Some(3), source: Source::Detected };
        assert_eq!((c3.name(), c3.full_name(), c3.to_string()), ("C".into(), "C3".into(), "C3".into()));
        let fs = Note { pitch_class: 6, octave: None, source: Source::Detected };
        assert_eq!(fs.full_name(), "F#");
        assert!(c3.matches(&Key::parse("Cm").unwrap()) && c3.matches(&Key::parse("C").unwrap()));
        assert!(!c3.matches(&Key::parse("Am").unwrap()));
        // Optional octave: absent from the JSON when unknown.
        assert_eq!(serde_json::to_string(&fs).unwrap(), r#"{"pitch_class":6,"source":"detected"}"#);
        assert_eq!(
            serde_json::to_string(&c3).unwrap(),
            r#"{"pitch_class":0,"octave":3,"source":"detected"}"#
        );
        let named = Tempo { bpm: 128.0, source: Source::Name, confidence: 1.0 };
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            r#"{"bpm":128.0,"source":"name","confidence":1.0}"#
        );
    }

    proptest! {
        #[test]
        fn name_parses_back(tonic in 0u8..12, minor: bool) {
            let mode = if minor { Mode::Minor } else { Mode::Major };
            let parsed: Key = Key { tonic, mode, source: Source::Stated }.name().parse().unwrap();
            prop_assert_eq!((parsed.tonic, parsed.mode), (tonic, mode));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            let _ = Key::parse(&s);
        }
    }
}
