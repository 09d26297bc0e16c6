//! License certificates: a license token wrapped in text a person can read.
//!
//! A certificate is what a buyer keeps and shows (to a distributor, years later):
//! plain UTF-8, the facts of the purchase in words, the licensed files with their
//! BLAKE3 hashes and sizes, and at the end the signed token itself, hex-encoded
//! between marker lines:
//!
//! ```text
//! -----BEGIN SMPL LICENSE TOKEN-----
//! 534d504c01…            (the envelope bytes, 64 hex digits a line)
//! -----END SMPL LICENSE TOKEN-----
//! ```
//!
//! Only two parts are read back by [`parse`]: the token block and the file lines
//! (`  <hash>  <bytes>  <name>` under `Licensed files`). Everything else is for
//! people and is not trusted: a verifier prints what the *token* says. The file
//! lines are trusted only after the verifier has rebuilt the pack's content hash
//! from them and found the one the token signs (see `smpl license verify`).

use crate::ids::{hex_decode, hex_encode};
use crate::{BlobHash, Envelope, LicenseTerms, LicenseToken, Manifest, ProtocolError};

const BEGIN: &str = "-----BEGIN SMPL LICENSE TOKEN-----";
const END: &str = "-----END SMPL LICENSE TOKEN-----";
const FILES_HEADING: &str = "Licensed files (BLAKE3 hash, bytes, name):";
/// Hex digits per line of the token block.
const LINE: usize = 64;

/// One licensed file as a certificate lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedFile {
    pub hash: BlobHash,
    pub size: u64,
    pub name: String,
}

/// What [`parse`] reads back from a certificate.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// The token envelope bytes, not yet verified.
    pub token: Vec<u8>,
    /// The listed files, in pack order, not yet checked against the token.
    pub files: Vec<CertifiedFile>,
}

/// The certificate text for `token` (whose envelope is `envelope`), listing the
/// files of `manifest`, the manifest of the licensed version when it is at hand
/// (without it the certificate lists no files).
pub fn render(envelope: &Envelope, token: &LicenseToken, manifest: Option<&Manifest>) -> String {
    let mut out = String::new();
    let price = token.price.as_ref().map_or_else(|| "free".to_string(), |p| p.to_string());
    let terms = match &token.terms {
        LicenseTerms::Named(name) => name.clone(),
        LicenseTerms::Custom(text) => format!("custom terms: {text}"),
    };
    out.push_str("smpl license certificate\n\n");
    out.push_str("The buyer's node below holds a license, issued and signed by the seller (the\n");
    out.push_str("pack's author), to the exact files listed. Anyone can check it offline with\n");
    out.push_str("`smpl license verify <this file>`; add `--files DIR` to check a folder of files.\n\n");
    let (title, author) = manifest.map_or(("", ""), |m| (m.title.as_str(), m.author_name.as_str()));
    let rows = [
        ("Pack", format!("{title} (id {}, version {})", token.pack_id, token.seq)),
        ("Seller", format!("{author} (node {})", token.seller)),
        ("Buyer", format!("node {}", token.buyer)),
        ("Price", price),
        ("Terms", terms),
        ("Issued", utc_time(token.issued_at)),
        ("License id", token.license_id.to_string()),
        ("Content", token.content.to_string()),
    ];
    for (label, value) in rows {
        out.push_str(&format!("{:<12}{value}\n", format!("{label}:")));
    }
    if let Some(manifest) = manifest.filter(|m| m.content == token.content) {
        out.push('\n');
        out.push_str(FILES_HEADING);
        out.push('\n');
        for sample in &manifest.samples {
            out.push_str(&format!("  {}  {}  {}\n", sample.hash, sample.size, sample.name));
        }
    }
    out.push('\n');
    out.push_str(BEGIN);
    out.push('\n');
    let hex = hex_encode(envelope.as_bytes());
    for chunk in hex.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// Reads a certificate (or a bare token envelope, which starts with `SMPL`).
pub fn parse(bytes: &[u8]) -> Result<Certificate, ProtocolError> {
    if bytes.starts_with(b"SMPL") {
        return Ok(Certificate { token: bytes.to_vec(), files: Vec::new() });
    }
    let bad = |reason| ProtocolError::Parse { what: "license certificate", input: String::new(), reason };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("it is neither text nor a token"))?;
    let mut lines = text.lines();
    let mut files = Vec::new();
    let mut in_files = false;
    for line in lines.by_ref() {
        if line == BEGIN {
            break;
        }
        if line == FILES_HEADING {
            in_files = true;
        } else if in_files && line.trim().is_empty() {
            in_files = false;
        } else if in_files {
            files.push(file_line(line).ok_or_else(|| bad("a line of the file list is malformed"))?);
        }
    }
    let mut hex = String::new();
    let mut ended = false;
    for line in lines {
        if line == END {
            ended = true;
            break;
        }
        hex.push_str(line.trim());
    }
    if hex.is_empty() && !ended {
        return Err(bad("it holds no `-----BEGIN SMPL LICENSE TOKEN-----` block"));
    }
    if !ended {
        return Err(bad("the token block has no END line (the file is cut off)"));
    }
    let token = hex_decode(&hex).map_err(bad)?;
    Ok(Certificate { token, files })
}

fn file_line(line: &str) -> Option<CertifiedFile> {
    let rest = line.strip_prefix("  ")?;
    let (hash, rest) = rest.split_once("  ")?;
    let (size, name) = rest.split_once("  ")?;
    Some(CertifiedFile { hash: hash.parse().ok()?, size: size.parse().ok()?, name: name.to_string() })
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn utc_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01, counting in 400-year eras of 146,097
    // days that start on 0000-03-01 (so the leap day is the last day of a year).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_time(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn file_lines() {
        let hash = BlobHash([0xab; 32]);
        let line = format!("  {hash}  1234  kicks/kick  01.wav");
        assert_eq!(
            file_line(&line),
            Some(CertifiedFile { hash, size: 1234, name: "kicks/kick  01.wav".into() })
        );
        assert_eq!(file_line("  nothex  12  a.wav"), None);
    }

    #[test]
    fn refuses_text_without_a_token() {
        assert!(parse(b"hello").is_err());
        let cut = format!("{BEGIN}\nabcd\n");
        assert!(parse(cut.as_bytes()).unwrap_err().to_string().contains("cut off"));
        let odd = format!("{BEGIN}\nabc\n{END}\n");
        assert!(parse(odd.as_bytes()).is_err());
    }
}
