//! Shared semantic checks for decoded bodies. Each returns a readable reason that the
//! caller wraps in [`ProtocolError::Invalid`](crate::ProtocolError::Invalid).

use std::collections::HashSet;

use crate::limits::*;
use crate::{LicenseTerms, NodeId, PackId, Price};

/// A slug: 1..=[`MAX_SLUG`] bytes of `a-z`, `0-9` and `-`.
pub(crate) fn check_slug(slug: &str) -> Result<(), String> {
    if slug.is_empty() || slug.len() > MAX_SLUG {
        return Err(format!("slug {:?} must be 1..={MAX_SLUG} bytes", truncate(slug)));
    }
    if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("slug {slug:?} may hold only a-z, 0-9 and -"));
    }
    Ok(())
}

/// The pack id is the one [`PackId::derive`] gives for `author` and `slug`.
pub(crate) fn check_pack_id(pack_id: &PackId, author: &NodeId, slug: &str) -> Result<(), String> {
    check_slug(slug)?;
    if PackId::derive(author, slug) != *pack_id {
        return Err(format!("pack id {pack_id} does not derive from author {author} and slug {slug:?}"));
    }
    Ok(())
}

/// Text of at most `max` bytes with no control characters but newline and tab.
pub(crate) fn check_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    check_len(what, s, max)?;
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{what} {:?} contains control characters", truncate(s)));
    }
    Ok(())
}

/// One line of at most `max` bytes: no control characters at all.
pub(crate) fn check_line(what: &str, s: &str, max: usize) -> Result<(), String> {
    check_len(what, s, max)?;
    if s.chars().any(char::is_control) {
        return Err(format!("{what} {:?} contains control characters or line breaks", truncate(s)));
    }
    Ok(())
}

fn check_len(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!("{what} is {} bytes, over the limit of {max}", s.len()));
    }
    Ok(())
}

/// At most [`MAX_TAGS`] non-empty tags of at most [`MAX_TAG`] bytes each.
pub(crate) fn check_tags(what: &str, tags: &[String]) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("{what} has {} tags, over the limit of {MAX_TAGS}", tags.len()));
    }
    for tag in tags {
        if tag.trim().is_empty() {
            return Err(format!("{what} has an empty tag"));
        }
        check_line("tag", tag, MAX_TAG)?;
    }
    Ok(())
}

/// A plain relative `/`-separated path that cannot leave the pack folder on any
/// platform: no leading `/`, no `\`, `:` or control characters, no empty, `.` or
/// `..` component.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    check_line("file name", name, MAX_FILE_NAME)?;
    if name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains(':')
        || name.split('/').any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "file name {name:?} is not a plain relative path (no leading /, \\, :, . or .. parts)"
        ));
    }
    Ok(())
}

/// File names are unique and none is also used as a folder of another.
pub(crate) fn check_file_set<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut folders = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(format!("file name {name:?} appears twice"));
        }
        for (i, _) in name.match_indices('/') {
            folders.insert(&name[..i]);
        }
    }
    if let Some(clash) = seen.iter().find(|name| folders.contains(*name)) {
        return Err(format!("{clash:?} is both a file and a folder"));
    }
    Ok(())
}

/// A price is a positive amount in an upper-case currency code (`None` means free).
pub(crate) fn check_price(price: Option<&Price>) -> Result<(), String> {
    let Some(price) = price else {
        return Ok(());
    };
    if price.currency.is_empty()
        || price.currency.len() > MAX_CURRENCY
        || !price.currency.bytes().all(|b| b.is_ascii_uppercase())
    {
        return Err(format!(
            "currency {:?} is not an upper-case code of 1..={MAX_CURRENCY} letters",
            truncate(&price.currency)
        ));
    }
    if price.amount_minor == 0 {
        return Err("price is zero: a free pack has no price".into());
    }
    Ok(())
}

pub(crate) fn check_terms(terms: &LicenseTerms) -> Result<(), String> {
    match terms {
        LicenseTerms::Named(name) => {
            if name.trim().is_empty() {
                return Err("license name is empty".into());
            }
            check_line("license name", name, MAX_SHORT_TEXT)
        }
        LicenseTerms::Custom(text) => check_text("license text", text, MAX_LONG_TEXT),
    }
}

/// The first 40 characters, for error messages about untrusted input.
fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        for ok in ["kick.wav", "drums/kick 01.wav", "a/b/c.flac", ".hidden.wav", "x..y.wav"] {
            assert!(check_file_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs.wav",
            "../x",
            "a/../x",
            "a/./x",
            "./x",
            "a//b",
            "a/",
            "c:\\x",
            "C:x.wav",
            "a\\b",
            "nul\0.wav",
            "new\nline.wav",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"a".repeat(MAX_FILE_NAME)).is_ok());
        assert!(check_file_name(&"a".repeat(MAX_FILE_NAME + 1)).is_err());
    }

    #[test]
    fn file_sets() {
        assert!(check_file_set(["a.wav", "b/a.wav", "b/c/d.wav"].into_iter()).is_ok());
        assert!(check_file_set(["a.wav", "a.wav"].into_iter()).is_err());
        assert!(check_file_set(["b", "b/a.wav"].into_iter()).is_err());
        assert!(check_file_set(["b/c/d.wav", "b/c"].into_iter()).is_err());
    }

    #[test]
    fn slugs() {
        assert!(check_slug("dusty-808s-vol-2").is_ok());
        for bad in ["", "Dusty", "a b", "a_b", "ü", "a/b"] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
        assert!(check_slug(&"a".repeat(MAX_SLUG)).is_ok());
        assert!(check_slug(&"a".repeat(MAX_SLUG + 1)).is_err());
    }

    #[test]
    fn prices() {
        let p = |amount_minor, currency: &str| Price { amount_minor, currency: currency.into() };
        assert!(check_price(None).is_ok());
        assert!(check_price(Some(&p(499, "USD"))).is_ok());
        for bad in [p(0, "USD"), p(1, ""), p(1, "usd"), p(1, "US1"), p(1, "ABCDEFGHI")] {
            assert!(check_price(Some(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_and_tags() {
        assert!(check_text("t", "line\nnext\ttab", 100).is_ok());
        assert!(check_text("t", "bell\u{7}", 100).is_err());
        assert!(check_text("t", "abc", 2).is_err());
        assert!(check_line("t", "one line", 100).is_ok());
        assert!(check_line("t", "two\nlines", 100).is_err());
        assert!(check_line("t", "tab\t", 100).is_err());
        assert!(check_tags("pack", &["a\nb".into()]).is_err());
        assert!(check_tags("pack", &["808".into(), "dusty".into()]).is_ok());
        assert!(check_tags("pack", &[" ".into()]).is_err());
        assert!(check_tags("pack", &["x".repeat(MAX_TAG + 1)]).is_err());
        assert!(check_tags("pack", &vec!["t".to_string(); MAX_TAGS + 1]).is_err());
        assert!(check_terms(&LicenseTerms::Named("".into())).is_err());
        assert!(check_terms(&LicenseTerms::Custom("x".repeat(MAX_LONG_TEXT + 1))).is_err());
    }
}
