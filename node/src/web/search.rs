//! The search page: its state lives in the URL (`/?q=kick&kind=loop&bpm=120..130
//! &key=Am&key_match=relative&max_price=5&genre=…&author=…&packs=1`), so a search
//! reloads, bookmarks and shares. `/ui/results` answers the results fragment
//! (facets and rows) that the page swaps in as the producer types.

use std::collections::HashSet;
use std::fmt::Write;

use serde::Deserialize;
use smpl_index::{Hit, KeyMatch, SampleRef, SearchQuery, SearchResults, Sort};
use smpl_protocol::{NodeId, PackId, SampleKind};

use super::html::{self, esc, esc_into, url};

/// Hits per page.
pub const PAGE: usize = 50;

/// The search state, exactly as the URL's query string holds it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub genre: Option<String>,
    pub tag: Option<String>,
    pub kind: Option<String>,
    pub bpm: Option<String>,
    pub key: Option<String>,
    pub key_match: Option<String>,
    pub max_price: Option<String>,
    pub author: Option<String>,
    pub packs: Option<String>,
    pub similar: Option<String>,
    pub sort: Option<String>,
    pub offset: Option<String>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl SearchParams {
    /// The fields in URL order, for links.
    fn fields(&self) -> [(&'static str, Option<&str>); 13] {
        [
            ("q", present(&self.q)),
            ("genre", present(&self.genre)),
            ("tag", present(&self.tag)),
            ("kind", present(&self.kind)),
            ("bpm", present(&self.bpm)),
            ("key", present(&self.key)),
            ("key_match", present(&self.key_match)),
            ("max_price", present(&self.max_price)),
            ("author", present(&self.author)),
            ("packs", present(&self.packs)),
            ("similar", present(&self.similar)),
            ("sort", present(&self.sort)),
            ("offset", present(&self.offset)),
        ]
    }

    /// The query string of these params with `name` set to `value` (or removed).
    pub fn href_with(&self, name: &str, value: Option<&str>) -> String {
        let mut out = String::from("/?");
        for (k, v) in self.fields() {
            let v = if k == name { value } else { v };
            if k == "offset" && name != "offset" {
                continue;
            }
            if let Some(v) = v {
                let _ = write!(out, "{k}={}&", url(v));
            }
        }
        out.pop();
        out
    }

    /// The index query these params ask for; an error names the field that was wrong.
    pub fn query(&self) -> Result<SearchQuery, String> {
        let mut query = SearchQuery {
            text: present(&self.q).map(str::to_string),
            genre: present(&self.genre).map(str::to_string),
            tags: present(&self.tag).map(|t| vec![t.to_string()]).unwrap_or_default(),
            packs: present(&self.packs).is_some_and(|p| p != "0"),
            limit: PAGE,
            ..SearchQuery::default()
        };
        query.kind = match present(&self.kind) {
            None => None,
            Some("loop") => Some(SampleKind::Loop),
            Some("one-shot" | "oneshot" | "one_shot") => Some(SampleKind::OneShot),
            Some(other) => return Err(format!("kind {other:?}: use loop or one-shot")),
        };
        if let Some(bpm) = present(&self.bpm) {
            query.bpm =
                Some(parse_bpm(bpm).ok_or_else(|| format!("BPM {bpm:?}: use 120, 120..130 or 120-130"))?);
        }
        query.key = present(&self.key).map(str::to_string);
        query.key_match = match present(&self.key_match) {
            None | Some("exact") => KeyMatch::Exact,
            Some("relative") => KeyMatch::Relative,
            Some("compatible") => KeyMatch::Compatible,
            Some(other) => return Err(format!("key match {other:?}: use exact, relative or compatible")),
        };
        if let Some(p) = present(&self.max_price) {
            let v: f64 =
                p.replace(',', ".").parse().map_err(|_| format!("price ceiling {p:?} is not a number"))?;
            query.max_price = Some(v.max(0.0));
        }
        if let Some(a) = present(&self.author) {
            query.author = Some(a.parse::<NodeId>().map_err(|_| format!("author {a:?} is not a node id"))?);
        }
        if let Some(s) = present(&self.similar) {
            let (pack, sample) =
                s.split_once('/').ok_or_else(|| format!("similar {s:?}: use PACK_ID/SAMPLE"))?;
            let pack_id = pack.parse::<PackId>().map_err(|_| format!("similar {s:?}: not a pack id"))?;
            query.similar_to = Some(SampleRef { pack_id, sample: sample.to_string() });
        }
        query.sort = match present(&self.sort) {
            Some("newest") => Sort::Newest,
            _ => Sort::Relevance,
        };
        query.offset = present(&self.offset).and_then(|o| o.parse().ok()).unwrap_or(0).min(10_000);
        Ok(query)
    }
}

/// `120`, `120..130`, `120-130` (either order): a range in BPM; a single tempo
/// means within 2 BPM of it.
fn parse_bpm(text: &str) -> Option<(f32, f32)> {
    let parts: Vec<&str> =
        if text.contains("..") { text.split("..").collect() } else { text.split('-').collect() };
    let nums: Vec<f32> = parts.iter().map(|p| p.trim().parse::<f32>()).collect::<Result<_, _>>().ok()?;
    match nums[..] {
        [one] if one > 0.0 => Some((one - 2.0, one + 2.0)),
        [a, b] if a > 0.0 && b > 0.0 => Some((a.min(b), a.max(b))),
        _ => None,
    }
}

/// What a results row needs besides the hit: its waveform and whether this node
/// holds a licence for (or is the author of) its pack.
pub trait RowInfo {
    fn waveform(&self, pack: &PackId, sample: &str) -> Option<&[u8]>;
    fn licensed(&self, pack: &PackId) -> bool;
}

/// Waveforms and licences looked up beforehand.
pub struct Looked {
    /// `(pack, sample) → points`.
    pub waves: std::collections::HashMap<(PackId, String), Vec<u8>>,
    pub licensed: HashSet<PackId>,
}

impl RowInfo for Looked {
    fn waveform(&self, pack: &PackId, sample: &str) -> Option<&[u8]> {
        self.waves.get(&(*pack, sample.to_string())).map(Vec::as_slice)
    }
    fn licensed(&self, pack: &PackId) -> bool {
        self.licensed.contains(pack)
    }
}

/// The results fragment: the count, the facet lists and the rows.
pub fn results_fragment(params: &SearchParams, results: &SearchResults, info: &dyn RowInfo) -> String {
    let mut out = String::with_capacity(4096 + results.hits.len() * 900);
    let what = if present(&params.packs).is_some() { "pack" } else { "sample" };
    let plural = if results.total == 1 { "" } else { "s" };
    let _ = write!(
        out,
        "<div id=\"facets\" class=\"facets\"><p class=\"count\">{} {what}{plural}</p>",
        results.total
    );
    facet(&mut out, params, "genre", "Genre", &results.facets.genre);
    facet(&mut out, params, "kind", "Kind", &results.facets.kind);
    facet(&mut out, params, "key", "Key", &results.facets.key);
    facet(&mut out, params, "tag", "Tags", &results.facets.tags);
    out.push_str("</div>");
    if results.hits.is_empty() {
        out.push_str("<p class=\"empty\">Nothing matches. Fewer words or filters find more.</p>");
        return out;
    }
    out.push_str("<table class=\"hits\" id=\"hits\"><thead><tr><th></th><th>Sample</th><th>Pack</th>");
    out.push_str(
        "<th>Author</th><th>BPM</th><th>Key</th><th>Length</th><th>Price</th><th></th></tr></thead><tbody>",
    );
    for hit in &results.hits {
        row(&mut out, hit, info);
    }
    out.push_str("</tbody></table>");
    let offset = present(&params.offset).and_then(|o| o.parse::<usize>().ok()).unwrap_or(0);
    if offset + results.hits.len() < results.total {
        let next = (offset + PAGE).to_string();
        let _ = write!(
            out,
            "<p><a class=\"more\" href=\"{}\">Next {PAGE}</a></p>",
            esc(&params.href_with("offset", Some(&next)))
        );
    }
    out
}

fn facet(out: &mut String, params: &SearchParams, name: &str, label: &str, values: &[(String, u64)]) {
    if values.is_empty() {
        return;
    }
    let current = params.fields().iter().find(|(k, _)| *k == name).and_then(|(_, v)| *v).map(str::to_string);
    let _ = write!(out, "<section class=\"facet\" data-facet=\"{name}\"><h3>{label}</h3><ul>");
    if current.is_some() {
        let _ = write!(
            out,
            "<li><a class=\"clear\" href=\"{}\">any</a></li>",
            esc(&params.href_with(name, None))
        );
    }
    for (value, count) in values.iter().take(12) {
        let on = current.as_deref() == Some(value.as_str());
        let class = if on { " class=\"on\"" } else { "" };
        let _ = write!(
            out,
            "<li><a{class} href=\"{}\">{}</a> <span class=\"n\">{count}</span></li>",
            esc(&params.href_with(name, Some(value))),
            esc(value)
        );
    }
    out.push_str("</ul></section>");
}

fn row(out: &mut String, hit: &Hit, info: &dyn RowInfo) {
    let pack = hit.pack_id.to_hex();
    out.push_str("<tr class=\"hit\"");
    if let Some(sample) = &hit.sample {
        out.push_str(" data-sample=\"");
        esc_into(out, sample);
        let _ = write!(out, "\" data-preview=\"/ui/preview/{pack}?sample={}\"", url(sample));
        if let Some(points) = info.waveform(&hit.pack_id, sample) {
            let _ = write!(out, " data-wave=\"{}\"", html::wave_hex(points));
        }
    }
    let _ = write!(out, " data-pack=\"{pack}\"><td>");
    if hit.sample.is_some() {
        out.push_str("<button class=\"play\" type=\"button\" tabindex=\"-1\" aria-label=\"Play\">▶</button>");
    }
    out.push_str("</td><td class=\"name\">");
    match &hit.sample {
        Some(sample) => {
            out.push_str("<span class=\"sname\">");
            esc_into(out, sample);
            out.push_str("</span><canvas class=\"wave\" width=\"240\" height=\"28\"></canvas>");
        }
        None => {
            let _ = write!(out, "<span class=\"sname\">{}</span>", esc(&hit.genre));
        }
    }
    let _ = write!(out, "</td><td><a href=\"/packs/{pack}\">");
    esc_into(out, &hit.pack_title);
    let _ = write!(out, "</a></td><td><a href=\"/?author={}\">", hit.author.to_hex());
    esc_into(out, &hit.author_name);
    out.push_str("</a></td><td class=\"num\">");
    if let Some(bpm) = hit.bpm {
        let _ = write!(out, "{bpm:.0}");
    }
    out.push_str("</td><td>");
    if let Some(key) = &hit.key {
        esc_into(out, key);
    }
    out.push_str("</td><td class=\"num\">");
    if let Some(ms) = hit.duration_ms {
        out.push_str(&html::duration(ms));
    }
    out.push_str("</td><td class=\"price\">");
    if info.licensed(&hit.pack_id) {
        out.push_str("<span class=\"owned\">licensed</span>");
    } else {
        esc_into(out, &html::price(&hit.price));
    }
    out.push_str("</td><td>");
    if let Some(sample) = &hit.sample {
        let _ = write!(out, "<a class=\"similar\" href=\"/?similar={pack}%2F{}\">Similar</a>", url(sample));
    }
    out.push_str("</td></tr>");
}

/// The search form, prefilled from the URL.
pub fn form(params: &SearchParams) -> String {
    let v = |f: &Option<String>| esc(present(f).unwrap_or(""));
    let sel = |f: &Option<String>, value: &str| if present(f) == Some(value) { " selected" } else { "" };
    let mut out = String::with_capacity(2048);
    out.push_str("<form id=\"search\" class=\"search\" action=\"/\" method=\"get\" role=\"search\">");
    let _ = write!(
        out,
        "<input id=\"q\" name=\"q\" type=\"search\" placeholder=\"dusty 808 kick\" autocomplete=\"off\" \
         aria-label=\"Search (press / to focus)\" value=\"{}\">",
        v(&params.q)
    );
    out.push_str("<div class=\"filters\">");
    let _ =
        write!(out, "<label>Genre <input name=\"genre\" size=\"8\" value=\"{}\"></label>", v(&params.genre));
    let _ = write!(
        out,
        "<label>Kind <select name=\"kind\"><option value=\"\">any</option>\
         <option value=\"loop\"{}>loop</option><option value=\"one-shot\"{}>one-shot</option></select></label>",
        sel(&params.kind, "loop"),
        sel(&params.kind, "one-shot")
    );
    let _ = write!(
        out,
        "<label>BPM <input name=\"bpm\" size=\"7\" placeholder=\"120..128\" value=\"{}\"></label>",
        v(&params.bpm)
    );
    let _ = write!(
        out,
        "<label>Key <input name=\"key\" size=\"4\" placeholder=\"Am\" value=\"{}\"></label>",
        v(&params.key)
    );
    let _ = write!(
        out,
        "<label>Match <select name=\"key_match\"><option value=\"exact\">exact</option>\
         <option value=\"relative\"{}>relative</option><option value=\"compatible\"{}>compatible</option></select></label>",
        sel(&params.key_match, "relative"),
        sel(&params.key_match, "compatible")
    );
    let _ = write!(
        out,
        "<label>Max price <input name=\"max_price\" size=\"5\" value=\"{}\"></label>",
        v(&params.max_price)
    );
    let _ = write!(
        out,
        "<label>Author <input name=\"author\" size=\"10\" value=\"{}\"></label>",
        v(&params.author)
    );
    let checked = if present(&params.packs).is_some_and(|p| p != "0") { " checked" } else { "" };
    let _ = write!(out, "<label><input type=\"checkbox\" name=\"packs\" value=\"1\"{checked}> packs</label>");
    if let Some(tag) = present(&params.tag) {
        let _ = write!(out, "<input type=\"hidden\" name=\"tag\" value=\"{}\">", esc(tag));
    }
    if let Some(similar) = present(&params.similar) {
        let _ = write!(out, "<input type=\"hidden\" name=\"similar\" value=\"{}\">", esc(similar));
    }
    out.push_str("<button type=\"submit\">Search</button></div></form>");
    if let Some(similar) = present(&params.similar) {
        let _ = write!(
            out,
            "<p class=\"note\">Sounds like <b>{}</b> · <a href=\"{}\">clear</a></p>",
            esc(similar.split_once('/').map_or(similar, |(_, s)| s)),
            esc(&params.href_with("similar", None))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpm_forms() {
        assert_eq!(parse_bpm("120..130"), Some((120.0, 130.0)));
        assert_eq!(parse_bpm("130-120"), Some((120.0, 130.0)));
        assert_eq!(parse_bpm("128"), Some((126.0, 130.0)));
        assert_eq!(parse_bpm("fast"), None);
    }

    #[test]
    fn links_keep_the_state_and_drop_the_page() {
        let p = SearchParams { q: Some("kick".into()), offset: Some("50".into()), ..Default::default() };
        assert_eq!(p.href_with("kind", Some("loop")), "/?q=kick&kind=loop");
        assert_eq!(p.href_with("q", None), "/");
    }
}
