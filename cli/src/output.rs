//! The printer owns stdout and stderr: tables or JSON lines, errors, progress bars.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub struct Printer {
    json: bool,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints one JSON object on its own line.
    pub fn object<T: Serialize>(&self, value: &T) {
        let line = serde_json::to_string(value).unwrap_or_default();
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// Prints a human line (never under `--json`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{}", text.as_ref());
        }
    }

    /// Prints a note on stderr (never under `--json`).
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
        }
    }

    /// Prints rows as an aligned table with a header.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut stdout = std::io::stdout().lock();
        let render = |cells: Vec<&str>| {
            let mut line = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  "));
                }
            }
            line.trim_end().to_string()
        };
        let _ = writeln!(stdout, "{}", render(header.to_vec()));
        for row in rows {
            let _ = writeln!(stdout, "{}", render(row.iter().map(String::as_str).collect()));
        }
    }

    /// One line on stderr: what went wrong (and its causes).
    pub fn error(&self, e: &anyhow::Error) {
        let mut message = e.to_string();
        for cause in e.chain().skip(1) {
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(": ");
                message.push_str(&cause);
            }
        }
        let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    }

    /// A byte progress bar on stderr, hidden under `--json` or off a terminal.
    pub fn progress(&self, total: u64, what: &str) -> ProgressBar {
        if self.json || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar
    }
}

/// `n` and the noun, singular or plural: "1 match", "3 matches".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A size for people: "812 bytes", "14.2 KB", "3.1 MB", "1.25 GB" (powers of 1000).
pub fn size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    for (unit, scale) in UNITS {
        let value = bytes as f64 / scale;
        if value >= 1.0 {
            let digits = if value >= 100.0 {
                0
            } else if value >= 10.0 {
                1
            } else {
                2
            };
            return format!("{value:.digits$} {unit}");
        }
    }
    count(bytes, "byte", "bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_read_like_words() {
        assert_eq!(count(1, "match", "matches"), "1 match");
        assert_eq!(count(0, "match", "matches"), "0 matches");
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(14_200), "14.2 KB");
        assert_eq!(size(3_140_000), "3.14 MB");
        assert_eq!(size(250_000_000), "250 MB");
        assert_eq!(size(1_250_000_000), "1.25 GB");
    }
}
