//! Text analysis shared by indexing and queries.
//!
//! Sample names are file names, so words hide behind `_`, `-`, `.`, `/` and
//! camelCase: `BD_Kick_01.wav`, `DustyKick808.wav` and `808-kick` must all find
//! `kick`. [`NameTokenizer`] splits on every non-alphanumeric character, at a
//! lower-to-upper case change (`DustyKick` → `Dusty`, `Kick`), before the last
//! capital of a capital run that a lower-case letter follows (`HTTPServer` →
//! `HTTP`, `Server`) and between letters and digits (`Kick01` → `Kick`, `01`).
//! The analyzer then lower-cases, folds accents to ASCII, drops tokens longer than
//! [`MAX_TOKEN_LEN`] bytes and applies the English stemmer (`kicks` → `kick`).

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream,
    Tokenizer,
};

/// The name the analyzer is registered under in the tantivy index.
pub(crate) const ANALYZER: &str = "smpl_v1";

/// Tokens longer than this (in bytes) are dropped.
pub(crate) const MAX_TOKEN_LEN: usize = 40;

/// The analyzer for every full-text field and for query text.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(NameTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzer registered in the index: [`analyzer`] behind a small cache of the
/// last texts it analyzed.
///
/// Every sample document of a pack carries the same pack text as one of its values,
/// and its name twice, so an indexing thread sees the same texts again and again;
/// the cache replays their tokens instead of splitting, folding and stemming anew.
pub(crate) fn indexing_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CachedAnalyzer { inner: analyzer(), entries: Vec::new() }).build()
}

/// Texts cached: the name, the sample's tags and the pack text of one document
/// (each field has an analyzer of its own; `own` uses two of the entries).
const CACHE_ENTRIES: usize = 3;

#[derive(Clone)]
pub(crate) struct CachedAnalyzer {
    inner: TextAnalyzer,
    /// Most recently used first.
    entries: Vec<(String, Vec<Token>)>,
}

/// Replays cached tokens; never empty, so `token()` always has a token to return.
pub(crate) enum CachedStream<'a> {
    Replay { tokens: &'a mut [Token], next: usize },
    Direct(tantivy::tokenizer::BoxTokenStream<'a>),
}

impl Tokenizer for CachedAnalyzer {
    type TokenStream<'a> = CachedStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CachedStream<'a> {
        match self.entries.iter().position(|(t, _)| t == text) {
            Some(i) => self.entries[..=i].rotate_right(1),
            None => {
                let mut tokens = Vec::new();
                let mut stream = self.inner.token_stream(text);
                while let Some(token) = stream.next() {
                    tokens.push(token.clone());
                }
                if self.entries.len() == CACHE_ENTRIES {
                    self.entries.pop();
                }
                self.entries.insert(0, (text.to_string(), tokens));
            }
        }
        if self.entries[0].1.is_empty() {
            return CachedStream::Direct(self.inner.token_stream(text));
        }
        CachedStream::Replay { tokens: &mut self.entries[0].1, next: 0 }
    }
}

impl TokenStream for CachedStream<'_> {
    fn advance(&mut self) -> bool {
        match self {
            CachedStream::Replay { tokens, next } => {
                *next += 1;
                *next <= tokens.len()
            }
            CachedStream::Direct(stream) => stream.advance(),
        }
    }

    fn token(&self) -> &Token {
        match self {
            CachedStream::Replay { tokens, next } => &tokens[next.saturating_sub(1).min(tokens.len() - 1)],
            CachedStream::Direct(stream) => stream.token(),
        }
    }

    fn token_mut(&mut self) -> &mut Token {
        match self {
            CachedStream::Replay { tokens, next } => {
                let i = next.saturating_sub(1).min(tokens.len() - 1);
                &mut tokens[i]
            }
            CachedStream::Direct(stream) => stream.token_mut(),
        }
    }
}

/// Runs the analyzer over `text` and returns the terms it produces, in order.
pub(crate) fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// Splits file names and prose into words; see the module docs for the rules.
#[derive(Clone, Default)]
pub(crate) struct NameTokenizer {
    token: Token,
}

pub(crate) struct NameTokenStream<'a> {
    text: &'a str,
    /// Byte offset where scanning resumes.
    pos: usize,
    token: &'a mut Token,
}

impl Tokenizer for NameTokenizer {
    type TokenStream<'a> = NameTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> NameTokenStream<'a> {
        self.token.reset();
        NameTokenStream { text, pos: 0, token: &mut self.token }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    /// A letter without case (CJK and the like).
    Other,
    Digit,
}

fn class(c: char) -> Option<Class> {
    if c.is_numeric() {
        Some(Class::Digit)
    } else if c.is_lowercase() {
        Some(Class::Lower)
    } else if c.is_uppercase() {
        Some(Class::Upper)
    } else if c.is_alphanumeric() {
        Some(Class::Other)
    } else {
        None
    }
}

/// Whether a word boundary falls between `prev` and `cur` (with `next` after `cur`).
fn boundary(prev: Class, cur: Class, next: Option<Class>) -> bool {
    match (prev, cur) {
        (Class::Digit, Class::Digit) => false,
        (Class::Digit, _) | (_, Class::Digit) => true,
        (Class::Lower, Class::Upper) => true,
        (Class::Upper, Class::Upper) => next == Some(Class::Lower),
        _ => false,
    }
}

impl TokenStream for NameTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let rest = &self.text[self.pos..];
        // Skip separators.
        let Some((skip, _)) = rest.char_indices().find(|&(_, c)| class(c).is_some()) else {
            self.pos = self.text.len();
            return false;
        };
        let start = self.pos + skip;
        let mut chars = self.text[start..].char_indices().peekable();
        let mut end = self.text.len();
        let mut prev: Option<Class> = None;
        while let Some((off, c)) = chars.next() {
            let Some(cur) = class(c) else {
                end = start + off;
                break;
            };
            if let Some(p) = prev {
                let next = chars.peek().and_then(|&(_, n)| class(n));
                if boundary(p, cur, next) {
                    end = start + off;
                    break;
                }
            }
            prev = Some(cur);
        }
        self.pos = end;
        self.token.text.clear();
        self.token.text.push_str(&self.text[start..end]);
        self.token.offset_from = start;
        self.token.offset_to = end;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The file name without a known audio extension, so every sample does not also
/// carry the term `wav`.
pub(crate) fn strip_audio_extension(name: &str) -> &str {
    const EXTENSIONS: [&str; 7] = [".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".mp3"];
    for ext in EXTENSIONS {
        if name.len() > ext.len() {
            let (stem, tail) = name.split_at(name.len() - ext.len());
            if tail.eq_ignore_ascii_case(ext) {
                return stem;
            }
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Vec<String> {
        let mut tokenizer = NameTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            assert_eq!(&text[t.offset_from..t.offset_to], t.text);
            out.push(t.text.clone());
        }
        out
    }

    #[test]
    fn splits_file_names() {
        assert_eq!(raw("BD_Kick_01.wav"), ["BD", "Kick", "01", "wav"]);
        assert_eq!(raw("DustyKick808.wav"), ["Dusty", "Kick", "808", "wav"]);
        assert_eq!(raw("Kicks/808-kick hard"), ["Kicks", "808", "kick", "hard"]);
        assert_eq!(raw("HTTPServer"), ["HTTP", "Server"]);
        assert_eq!(raw("120bpm_Am"), ["120", "bpm", "Am"]);
        assert_eq!(raw("  __ "), Vec::<String>::new());
        assert_eq!(raw("Café_Crème"), ["Café", "Crème"]);
        assert_eq!(raw("日本語ループ"), ["日本語ループ"]);
    }

    #[test]
    fn analyzer_lowercases_folds_and_stems() {
        let mut a = analyzer();
        assert_eq!(analyze(&mut a, "BD_Kick_01"), ["bd", "kick", "01"]);
        assert_eq!(analyze(&mut a, "Kicks Café"), ["kick", "cafe"]);
        assert_eq!(analyze(&mut a, "HiHats"), ["hi", "hat"]);
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(analyze(&mut a, &format!("{long} loop")), ["loop"]);
    }

    #[test]
    fn the_cached_analyzer_gives_the_same_terms() {
        let long = "Dusty Drums Vol 3\nhip hop\nMarla Beats\nRecorded through a vintage console";
        let mut cached = indexing_analyzer();
        let mut plain = analyzer();
        for text in
            [long, "BD_Kick_01", "BD_Kick_01", long, long, "Snare", "", "dusty", long, "Snare", "kick"]
        {
            assert_eq!(analyze(&mut cached, text), analyze(&mut plain, text), "{text}");
        }
    }

    #[test]
    fn strips_audio_extensions_only() {
        assert_eq!(strip_audio_extension("BD_Kick_01.WAV"), "BD_Kick_01");
        assert_eq!(strip_audio_extension("loops/Pad.aiff"), "loops/Pad");
        assert_eq!(strip_audio_extension("notes.txt"), "notes.txt");
        assert_eq!(strip_audio_extension(".wav"), ".wav");
    }
}
