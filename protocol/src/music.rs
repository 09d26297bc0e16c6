//! Musical facts about a sample: tempo and key, stated by the producer or detected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ProtocolError;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The producer said so (publish flag or file name).
    Stated,
    /// An analyser detected it.
    Detected,
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

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

impl Key {
    /// The canonical short name, e.g. `Am`, `F#`.
    pub fn name(&self) -> String {
        let tonic = NAMES[(self.tonic % 12) as usize];
        match self.mode {
            Mode::Major => tonic.to_string(),
            Mode::Minor => format!("{tonic}m"),
        }
    }

    /// Parses `A minor`, `Amin`, `Am`, `a`, `Bb major`, `F#m`… as a stated key.
    pub fn parse(s: &str) -> Result<Key, ProtocolError> {
        let err = |reason| ProtocolError::Parse {
            what: "key",
            input: s.chars().take(40).collect(),
            reason,
        };
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
        Ok(Key {
            tonic: (base + shift).rem_euclid(12) as u8,
            mode,
            source: Source::Stated,
        })
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
