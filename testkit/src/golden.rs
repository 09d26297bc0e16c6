//! Golden files: the exact bytes a type must encode to, kept in a crate's
//! `tests/golden/<name>.hex` as one line of lowercase hex. Running the tests with
//! `SMPL_BLESS=1` rewrites them from the current encoding, for a deliberate change
//! and a reviewed diff.

use std::path::Path;

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex text (white space around it ignored).
pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

/// The golden bytes `dir/<name>.hex`; with `SMPL_BLESS` set, writes `actual` there first.
pub fn expected(dir: &Path, name: &str, actual: &[u8]) -> Vec<u8> {
    let path = dir.join(format!("{name}.hex"));
    if std::env::var_os("SMPL_BLESS").is_some() {
        std::fs::write(&path, hex(actual) + "\n").expect("write golden");
    }
    unhex(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {}: {e}", path.display())))
}
