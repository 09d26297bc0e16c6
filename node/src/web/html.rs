//! HTML building blocks: escaping, the page layout, and formatting of the values
//! pages show. Pages are plain strings built by the functions of `pages` and
//! `search`; everything that came from outside (titles, names, paths, errors) goes
//! through [`esc`].

use std::fmt::Write;

use smpl_protocol::{LicenseTerms, NodeId, Price};

/// `text` with `& < > " '` escaped, for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    esc_into(&mut out, text);
    out
}

/// Appends `text`, escaped, to `out`.
pub fn esc_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `text` percent-encoded for a URL query value or path segment.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The pages in the navigation bar: path and label.
const NAV: &[(&str, &str)] = &[
    ("/", "Search"),
    ("/library", "Library"),
    ("/publish", "Publish"),
    ("/sales", "Sales"),
    ("/mine", "My packs"),
    ("/network", "Network"),
];

/// A whole page: head (stylesheet, script, CSRF token), navigation, `body`.
pub fn page(title: &str, current: &str, csrf: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(out, "<meta name=\"smpl-csrf\" content=\"{}\">", esc(csrf));
    let _ = write!(out, "<title>{} · smpl</title>", esc(title));
    out.push_str("<link rel=\"stylesheet\" href=\"/static/app.css\">");
    out.push_str("<script type=\"module\" src=\"/static/app.js\"></script></head><body>");
    out.push_str("<header class=\"top\"><a class=\"brand\" href=\"/\">smpl</a><nav>");
    for (path, label) in NAV {
        let here = if *path == current { " aria-current=\"page\"" } else { "" };
        let _ = write!(out, "<a href=\"{path}\"{here}>{label}</a>");
    }
    out.push_str("</nav><span id=\"live\" class=\"live\" aria-live=\"polite\"></span></header><main>");
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

/// A price, or "free".
pub fn price(price: &Option<Price>) -> String {
    price.as_ref().map_or_else(|| "free".to_string(), |p| p.to_string())
}

pub fn terms(terms: &LicenseTerms) -> String {
    match terms {
        LicenseTerms::Named(name) => name.clone(),
        LicenseTerms::Custom(text) => text.clone(),
    }
}

/// `m:ss.d` for a duration in milliseconds.
pub fn duration(ms: u64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        format!("{}:{:04.1}", (secs / 60.0) as u64, secs % 60.0)
    }
}

/// The first 8 hex digits of a node id, as the library's folder names show it.
pub fn short(id: &NodeId) -> String {
    id.to_hex()[..8].to_string()
}

/// Waveform points as hex, for a canvas to draw (`data-wave`).
pub fn wave_hex(points: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(points.len() * 2);
    for b in points {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

/// A message box; `kind` is `error` or `note`.
pub fn message(kind: &str, text: &str) -> String {
    format!("<p class=\"msg {kind}\" role=\"status\">{}</p>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(url("kick 808/ä"), "kick%20808%2F%C3%A4");
    }
}
