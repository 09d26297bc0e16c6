//! One function per command. Each returns the exit code for a completed request,
//! or an error (exit 1, or 2 for a [`UsageError`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;
use smpl_node::index::{Hit, KeyMatch, SampleRef, SearchQuery, Sort};
use smpl_node::{
    FetchEvent, Home, Multiaddr, NodeInfo, NodeOptions, PublishEvent, PublishRequest, SellerPolicy,
    TradeConfig,
};
use smpl_protocol::{LicenseTerms, NodeId, Price, SampleKind};

use crate::client::Client;
use crate::demo;
use crate::output::{Printer, count, size};

/// Bad usage that clap could not catch (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Address of the local HTTP API (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    api: std::net::SocketAddr,
    /// Do not look for peers on the local network with mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// libp2p listen address (repeatable); port 0 picks a free port. Default: TCP
    /// and QUIC on every interface, on the port this home used last (4747 at
    /// first), so peers that remember this node find it again after a restart.
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// A peer to join through (repeatable): an invite line (`smpl invite`) or one
    /// address, e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo….
    #[arg(long, value_name = "INVITE")]
    bootstrap: Vec<smpl_node::net::Invite>,
    /// An iroh relay URL for peers behind NATs (none by default).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// Relay connections for peers behind NATs (circuit relay v2, with the limits
    /// of `[relay_server]` in config.toml) and tell peers whether they are
    /// reachable (AutoNAT). For a node with a public address.
    #[arg(long)]
    relay_server: bool,
    /// How orders for your paid packs are decided: manual (`smpl sales approve`),
    /// auto, or hook:CMD (CMD gets the order as JSON on stdin and prints
    /// `approve` or `reject REASON`). Free packs are always issued at once.
    #[arg(long, default_value = "manual", value_name = "POLICY")]
    seller_policy: SellerPolicy,
    /// Seconds a payment hook may take before the order is rejected.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    hook_timeout: u64,
    /// Megabytes of disk other producers' listings take at most: their files (in
    /// whole 4 KB blocks), their share of the index and their records, and in an
    /// eighth of it the records of listings declined. Past it, the listings of the
    /// author who takes most go first; never yours, nor those you hold or whose
    /// authors you dealt with.
    #[arg(long, default_value_t = 2048, value_name = "MB")]
    listings_mb: u64,
    /// Other producers' listings kept at most.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    max_listings: usize,
    /// Payment hooks run at once at most (one is kept for buyers you sold to
    /// before); more orders are answered "busy" and sent again by the buyer.
    #[arg(long, default_value_t = smpl_node::trade::MAX_HOOKS, value_name = "N")]
    max_hooks: usize,
    /// Seconds between garbage collections of the blob store (blobs no pack,
    /// preview or download holds any more: superseded and retracted content).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    gc_interval: u64,
    /// Also serve the web app on this address (e.g. a LAN address for a phone),
    /// with the same login; by default it is on the API's 127.0.0.1 address only.
    #[arg(long, value_name = "ADDR")]
    ui_listen: Option<std::net::SocketAddr>,
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The folder of audio files to publish.
    dir: PathBuf,
    /// Publish a new version of this pack of yours (an id or a prefix of it);
    /// fields you do not give keep their current value.
    #[arg(long, value_name = "PACK_ID")]
    update: Option<String>,
    /// The pack's title, as buyers see it (required for a new pack).
    #[arg(long, required_unless_present = "update")]
    title: Option<String>,
    /// The pack's genre, e.g. techno or "hip hop".
    #[arg(long)]
    genre: Option<String>,
    /// Comma-separated tags.
    #[arg(long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// A few sentences about the pack.
    #[arg(long)]
    description: Option<String>,
    /// Price in major units, e.g. 4.99 or 4,99.
    #[arg(long, conflicts_with = "free")]
    price: Option<String>,
    /// The price's currency, an ISO 4217 code such as USD or EUR.
    #[arg(long, default_value = "USD", requires = "price")]
    currency: String,
    /// Make the pack free (a new pack without --price is free).
    #[arg(long)]
    free: bool,
    /// A named license (e.g. royalty-free, CC0-1.0, CC-BY-4.0); royalty-free for a new pack.
    #[arg(long)]
    license: Option<String>,
    /// The tempo of the pack's loops, if you know it (else it is detected; a BPM
    /// in a file name, as in `Groove_124bpm.wav`, wins for that file).
    #[arg(long, value_name = "BPM")]
    bpm: Option<f32>,
    /// The key of the pack's samples, e.g. Am or "F# major" (else it is detected;
    /// a key in a file name, as in `Pad_Cmin.wav`, wins for that file).
    #[arg(long)]
    key: Option<String>,
    /// A cover image, PNG or JPEG (default: cover.png or cover.jpg in the folder).
    #[arg(long, value_name = "FILE")]
    cover: Option<PathBuf>,
    /// How buyers pay you, shown before they buy, e.g. "PayPal to ada@example.org".
    #[arg(long, value_name = "TEXT")]
    payment: Option<String>,
    /// A page where buyers pay, https://….
    #[arg(long, value_name = "URL", requires = "payment")]
    payment_url: Option<String>,
    /// With --update: buyers of earlier versions must buy this one (a paid upgrade).
    #[arg(long, requires = "update")]
    paid_upgrade: bool,
    /// With --update: go ahead with a change of price or licence.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Loop,
    OneShot,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyMatchArg {
    Exact,
    Relative,
    Compatible,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SortArg {
    Relevance,
    Newest,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Words to look for (sample names, titles, tags, genres, authors).
    query: Vec<String>,
    /// Only packs of this genre.
    #[arg(long)]
    genre: Option<String>,
    /// Only results with this tag (repeatable; all must match).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only loops, or only one-shots.
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// A tempo (124: within 2 BPM) or a range: 120..128, 120-128, 120.., ..128.
    #[arg(long, value_name = "BPM|MIN..MAX")]
    bpm: Option<String>,
    /// A key, e.g. Am, F#, "C minor".
    #[arg(long)]
    key: Option<String>,
    /// With --key: that key only, also its relative (Am with C), or every key that
    /// mixes well (also a fifth up or down: Am with C, Em, Dm).
    #[arg(long, value_enum, default_value = "exact", requires = "key")]
    key_match: KeyMatchArg,
    /// Highest price in major units (free packs count as 0).
    #[arg(long, value_name = "P")]
    max_price: Option<f64>,
    /// Only packs by this node id.
    #[arg(long, value_name = "ID")]
    author: Option<String>,
    /// One result per pack instead of per sample.
    #[arg(long)]
    packs: bool,
    /// How many results to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Best matches first, or the newest packs first.
    #[arg(long, value_enum, default_value = "relevance")]
    sort: SortArg,
    /// Rank by how close each sample sounds to this one (PACK_ID/SAMPLE, the pack
    /// id or a prefix, and the sample's file name or a unique part of it).
    #[arg(long, value_name = "PACK_ID/SAMPLE")]
    similar_to: Option<String>,
}

impl SearchArgs {
    /// `smpl similar TARGET --limit N`: a search ranked by sound, without filters.
    pub fn similar(target: String, limit: usize) -> SearchArgs {
        SearchArgs {
            query: Vec::new(),
            genre: None,
            tags: Vec::new(),
            kind: None,
            bpm: None,
            key: None,
            key_match: KeyMatchArg::Exact,
            max_price: None,
            author: None,
            packs: false,
            limit,
            sort: SortArg::Relevance,
            similar_to: Some(target),
        }
    }
}

/// Splits `PACK_ID/SAMPLE` (checked before the node is asked anything).
fn split_target(target: &str) -> Result<(&str, &str)> {
    target
        .split_once('/')
        .filter(|(p, s)| !p.trim().is_empty() && !s.is_empty())
        .ok_or_else(|| usage(format!("{target:?}: give PACK_ID/SAMPLE, e.g. 3f2a9c/kick_01")))
}

/// Resolves the pack of `PACK_ID/SAMPLE` with the node (the id may be a prefix).
fn sample_ref(client: &Client, (pack, sample): (&str, &str)) -> Result<SampleRef> {
    let view = client.show(pack)?;
    Ok(SampleRef { pack_id: view.manifest.pack_id, sample: sample.to_string() })
}

pub fn init(home: &Home, out: &Printer, name: Option<String>, library: Option<PathBuf>) -> Result<ExitCode> {
    let (identity, created) = home.init()?;
    if name.is_some() || library.is_some() {
        let mut config = home.config()?;
        if let Some(name) = name {
            config.name = name;
        }
        if let Some(library) = library {
            config.library = std::path::absolute(&library)
                .map_err(|e| usage(format!("--library {}: {e}", library.display())))?;
        }
        home.save_config(&config)?;
    }
    let node_id = identity.node_id();
    if out.json() {
        out.object(&json!({ "node_id": node_id, "home": home.root(), "created": created }));
    } else if created {
        out.line(format!("created identity {node_id} in {}", home.root().display()));
    } else {
        out.line(format!("identity {node_id} already exists in {}", home.root().display()));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn node(home: &Home, out: &Printer, args: NodeArgs, with_demo: bool) -> Result<ExitCode> {
    smpl_node::bound_allocator();
    if let Ok(info) = home.node_info() {
        bail!("a node is already running for {} (pid {}, API {})", home.root().display(), info.pid, info.api);
    }
    if !home.identity_path().exists() {
        home.init()?;
        out.note(format!(
            "created a new identity in {} with the display name {:?}; set your own with \
             `smpl init --name \"Your Name\" --library DIR`",
            home.root().display(),
            home.config()?.name
        ));
    }
    let options = NodeOptions {
        home: home.clone(),
        api: args.api,
        listen: args.listen,
        bootstrap: args.bootstrap.into_iter().flat_map(|invite| invite.addrs).collect(),
        mdns: !args.no_mdns,
        relay: args.relay,
        relay_server: args.relay_server,
        gc_interval: Some(std::time::Duration::from_secs(args.gc_interval.max(1))),
        budget: smpl_node::budget::BudgetConfig {
            max_bytes: args.listings_mb.saturating_mul(1024 * 1024),
            max_listings: args.max_listings,
            ..Default::default()
        },
        trade: TradeConfig {
            policy: args.seller_policy,
            hook_timeout: std::time::Duration::from_secs(args.hook_timeout.max(1)),
            max_hooks: args.max_hooks.max(1),
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let json = out.json();
    let demo_home = home.clone();
    let web = smpl_node::web::WebOptions { ui_listen: args.ui_listen };
    runtime.block_on(smpl_node::run_with_web(
        options,
        web,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        move |info: &NodeInfo| {
            let printer = Printer::new(json);
            if json {
                printer.object(info);
            } else {
                printer.line(format!("smpl node {}", info.node_id));
                printer.line(format!("  API   {}", info.api));
                for addr in &info.listen {
                    printer.line(format!("  p2p   {addr}"));
                }
                printer.line(format!("  home  {}", demo_home.root().display()));
                printer.line("Press Ctrl-C to stop.");
            }
            if with_demo {
                std::thread::spawn(move || {
                    if let Err(e) = demo::publish_demo(&demo_home, &printer) {
                        printer.error(&e);
                    }
                });
            }
        },
    ))?;
    out.note("node stopped");
    Ok(ExitCode::SUCCESS)
}

pub fn id(home: &Home, out: &Printer) -> Result<ExitCode> {
    let info = Client::connect(home)?.id()?;
    if out.json() {
        out.object(&json!({ "node_id": info.node_id, "api": info.api, "listen": info.listen }));
    } else {
        out.line(format!("node id  {}", info.node_id));
        out.line(format!("api      {}", info.api));
        for addr in &info.listen {
            out.line(format!("listen   {addr}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The highest price a pack can be published at, in minor units: anything above
/// is a typo, not a sample pack.
const MAX_PRICE_MINOR: u64 = 10_000 * 100;

/// The ISO 4217 codes of the currencies in use.
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD",
    "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY",
    "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG",
    "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Parses a price like `4.99` (or `4,99`) into minor units, in an ISO 4217 currency.
fn parse_price(text: &str, currency: &str) -> Result<Price> {
    let bad = || usage(format!("--price {text:?} is not an amount like 4.99"));
    let text = text.trim();
    // One decimal separator, either way; no thousands separators.
    let separators = text.bytes().filter(|b| matches!(b, b'.' | b',')).count();
    if separators > 1 {
        return Err(bad());
    }
    let (whole, frac) = text.split_once(['.', ',']).unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let currency = currency.trim().to_uppercase();
    if !CURRENCIES.contains(&currency.as_str()) {
        return Err(usage(format!(
            "--currency {currency:?} is not an ISO 4217 currency code like USD or EUR"
        )));
    }
    let amount_minor = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)?;
    if amount_minor > MAX_PRICE_MINOR {
        return Err(usage(format!(
            "--price {text} is over the highest price a pack can have ({}.00)",
            MAX_PRICE_MINOR / 100
        )));
    }
    Ok(Price { amount_minor, currency })
}

pub fn publish(home: &Home, out: &Printer, args: PublishArgs) -> Result<ExitCode> {
    let dir = std::fs::canonicalize(&args.dir)
        .map_err(|e| usage(format!("cannot open folder {}: {e}", args.dir.display())))?;
    if args.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(usage("--title must not be empty"));
    }
    let (min, max) = (smpl_protocol::limits::MIN_BPM, smpl_protocol::limits::MAX_BPM);
    if let Some(bpm) = args.bpm.filter(|b| !(min..=max).contains(b)) {
        return Err(usage(format!("--bpm {bpm} is outside {min}..{max}")));
    }
    let price = match &args.price {
        Some(p) => Some(parse_price(p, &args.currency)?),
        None => None,
    };
    let free = args.free || price.as_ref().is_some_and(|p| p.amount_minor == 0);
    let cover = args
        .cover
        .as_ref()
        .map(|c| {
            std::fs::canonicalize(c).map_err(|e| usage(format!("cannot open cover {}: {e}", c.display())))
        })
        .transpose()?;
    let request = PublishRequest {
        dir,
        update: args.update,
        title: args.title,
        genre: args.genre,
        tags: args.tags,
        description: args.description,
        price: price.filter(|p| p.amount_minor > 0),
        free,
        license: args.license.map(LicenseTerms::Named),
        bpm: args.bpm,
        key: args
            .key
            .as_deref()
            .map(smpl_protocol::Key::parse)
            .transpose()
            .map_err(|e| usage(e.to_string()))?,
        cover,
        payment: args.payment.map(|text| smpl_protocol::PaymentInfo { text, url: args.payment_url }),
        paid_upgrade: args.paid_upgrade,
        confirm: args.yes,
    };
    let client = Client::connect(home)?;
    let mut bar = None;
    let mut outcome = None;
    client.publish(&request, |event| {
        match event {
            PublishEvent::Started { bytes, .. } => bar = Some(out.progress(bytes, "publishing")),
            PublishEvent::File { bytes, name } => {
                if let Some(bar) = &bar {
                    bar.inc(bytes);
                    bar.set_message(name);
                }
            }
            PublishEvent::Skipped(s) => {
                let note = format!("skipped {}: {}", s.name, s.reason);
                match &bar {
                    Some(bar) if !bar.is_hidden() => bar.println(note),
                    _ => out.note(note),
                }
            }
            PublishEvent::Done(o) => outcome = Some(o),
            PublishEvent::Error { message } => bail!("{message}"),
        }
        Ok(())
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = outcome.context("the node stopped before the publish finished")?;
    if out.json() {
        out.object(&json!({
            "pack_id": outcome.pack_id,
            "seq": outcome.seq,
            "samples": outcome.samples,
            "skipped": outcome.skipped,
            "unchanged": outcome.unchanged,
            "changes": outcome.changes,
        }));
    } else if outcome.unchanged {
        out.line(format!(
            "nothing changed: {} stays at version {} (same files and details)",
            outcome.pack_id, outcome.seq
        ));
    } else {
        for change in &outcome.changes {
            out.note(format!("changed {change}"));
        }
        out.line(format!(
            "published {} (version {}, {} samples{})",
            outcome.pack_id,
            outcome.seq,
            outcome.samples,
            if outcome.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", outcome.skipped.len())
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// How far from a single `--bpm` value a tempo may be and still match: detected
/// and stated tempi of one loop differ by a fraction of a BPM to a few.
const BPM_WINDOW: f32 = 2.0;

/// Parses `--bpm`: a tempo (`124`, meaning 122..126), or a range written `120..128`
/// or `120-128`, open at either end (`120..`, `..128`); a reversed range is turned
/// around.
fn parse_bpm(text: &str) -> Result<(f32, f32)> {
    let bad =
        || usage(format!("--bpm {text:?} is not a tempo like 124 or a range like 120..128, 120.. or ..128"));
    let number = |s: &str| -> Result<Option<f32>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f32>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(Some).ok_or_else(bad)
    };
    let Some((lo, hi)) = text.split_once("..").or_else(|| text.split_once('-')) else {
        let bpm = number(text)?.ok_or_else(bad)?;
        return Ok(((bpm - BPM_WINDOW).max(0.0), bpm + BPM_WINDOW));
    };
    let (lo, hi) = match (number(lo)?, number(hi)?) {
        (None, None) => return Err(bad()),
        (lo, hi) => (lo.unwrap_or(0.0), hi.unwrap_or(smpl_protocol::limits::MAX_BPM)),
    };
    Ok(if lo <= hi { (lo, hi) } else { (hi, lo) })
}

/// One search hit as `--json` prints it.
#[derive(Serialize)]
struct HitLine<'a> {
    pack_id: String,
    pack_title: &'a str,
    author: String,
    author_name: &'a str,
    sample: Option<&'a str>,
    kind: Option<&'static str>,
    bpm: Option<f32>,
    key: Option<&'a str>,
    duration_ms: Option<u64>,
    price: f64,
    currency: Option<&'a str>,
    score: f32,
}

fn hit_line(hit: &Hit) -> HitLine<'_> {
    HitLine {
        pack_id: hit.pack_id.to_string(),
        pack_title: &hit.pack_title,
        author: hit.author.to_string(),
        author_name: &hit.author_name,
        sample: hit.sample.as_deref(),
        kind: hit.kind.map(SampleKind::name),
        bpm: hit.bpm,
        key: hit.key.as_deref(),
        duration_ms: hit.duration_ms,
        price: hit.price.as_ref().map_or(0.0, Price::amount),
        currency: hit.price.as_ref().map(|p| p.currency.as_str()),
        score: hit.score,
    }
}

pub fn search(home: &Home, out: &Printer, args: SearchArgs) -> Result<ExitCode> {
    let text = args.query.join(" ");
    let key = match &args.key {
        Some(k) => Some(smpl_protocol::Key::parse(k).map_err(|e| usage(e.to_string()))?.name()),
        None => None,
    };
    let author = match &args.author {
        Some(a) => Some(a.parse::<NodeId>().map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let bpm = args.bpm.as_deref().map(parse_bpm).transpose()?;
    let target = args.similar_to.as_deref().map(split_target).transpose()?;
    let client = Client::connect(home)?;
    let similar_to = target.map(|t| sample_ref(&client, t)).transpose()?;
    let query = SearchQuery {
        similar_to,
        text: Some(text).filter(|t| !t.trim().is_empty()),
        genre: args.genre.map(|g| g.trim().to_lowercase()),
        tags: args.tags.iter().map(|t| t.trim().to_lowercase()).collect(),
        kind: args.kind.map(|k| match k {
            KindArg::Loop => SampleKind::Loop,
            KindArg::OneShot => SampleKind::OneShot,
        }),
        bpm,
        key,
        key_match: match args.key_match {
            KeyMatchArg::Exact => KeyMatch::Exact,
            KeyMatchArg::Relative => KeyMatch::Relative,
            KeyMatchArg::Compatible => KeyMatch::Compatible,
        },
        max_price: args.max_price,
        author,
        packs: args.packs,
        sort: match args.sort {
            SortArg::Relevance => Sort::Relevance,
            SortArg::Newest => Sort::Newest,
        },
        limit: args.limit,
        offset: 0,
    };
    let results = client.search(&query)?;
    if out.json() {
        for hit in &results.hits {
            out.object(&hit_line(hit));
        }
    } else if !results.hits.is_empty() && query.packs {
        // One row per pack: who made it, how much is in it, what it costs.
        let rows: Vec<Vec<String>> = results
            .hits
            .iter()
            .map(|h| {
                let shown = client.show(&h.pack_id.to_string()).ok();
                let samples = shown.as_ref().map(|v| v.manifest.samples.len() as u64);
                let bytes = shown.as_ref().map(|v| v.manifest.samples.iter().map(|s| s.size).sum::<u64>());
                vec![
                    h.pack_id.to_hex()[..12].to_string(),
                    h.pack_title.clone(),
                    format!("{} ({})", h.author_name, &h.author.to_hex()[..8]),
                    h.genre.clone(),
                    samples.map(|n| count(n, "sample", "samples")).unwrap_or_default(),
                    bytes.map(size).unwrap_or_default(),
                    h.price.as_ref().map_or("free".to_string(), |p| p.to_string()),
                ]
            })
            .collect();
        out.table(&["PACK", "TITLE", "AUTHOR", "GENRE", "SAMPLES", "SIZE", "PRICE"], &rows);
        out.line(count(results.total as u64, "pack", "packs"));
    } else if !results.hits.is_empty() {
        let rows: Vec<Vec<String>> = results
            .hits
            .iter()
            .map(|h| {
                let l = hit_line(h);
                vec![
                    l.pack_id[..12].to_string(),
                    l.pack_title.to_string(),
                    l.sample.unwrap_or("").to_string(),
                    l.kind.unwrap_or("").to_string(),
                    l.bpm.map(|b| format!("{b:.0}")).unwrap_or_default(),
                    l.key.unwrap_or("").to_string(),
                    l.duration_ms.map(|d| format!("{:.2}s", d as f64 / 1000.0)).unwrap_or_default(),
                    h.price.as_ref().map_or("free".to_string(), |p| p.to_string()),
                ]
            })
            .collect();
        out.table(&["PACK", "TITLE", "SAMPLE", "KIND", "BPM", "KEY", "LENGTH", "PRICE"], &rows);
        let facets = &results.facets;
        let summary = |name: &str, counts: &[(String, u64)]| {
            let top: Vec<String> = counts.iter().take(6).map(|(v, n)| format!("{v} ({n})")).collect();
            if top.is_empty() { None } else { Some(format!("{name}: {}", top.join(", "))) }
        };
        out.line(count(results.total as u64, "match", "matches"));
        for line in [
            summary("genre", &facets.genre),
            summary("kind", &facets.kind),
            summary("key", &facets.key),
            summary("tags", &facets.tags),
        ]
        .into_iter()
        .flatten()
        {
            out.line(format!("  {line}"));
        }
    }
    if results.hits.is_empty() {
        out.note("no matches");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(home: &Home, out: &Printer, pack_id: &str) -> Result<ExitCode> {
    let view = Client::connect(home)?.show(pack_id)?;
    let m = &view.manifest;
    if out.json() {
        out.object(m);
        return Ok(ExitCode::SUCCESS);
    }
    out.line(format!("{} — {} (version {})", m.title, m.author_name, m.seq));
    out.line(format!("  pack     {}", m.pack_id));
    out.line(format!("  author   {}", m.author));
    if !m.genre.is_empty() {
        out.line(format!("  genre    {}", m.genre));
    }
    if !m.tags.is_empty() {
        out.line(format!("  tags     {}", m.tags.join(", ")));
    }
    out.line(format!("  price    {}", m.price.as_ref().map_or("free".to_string(), |p| p.to_string())));
    out.line(format!(
        "  license  {}",
        match &m.license {
            LicenseTerms::Named(n) => n.clone(),
            LicenseTerms::Custom(t) => format!("custom: {t}"),
        }
    ));
    out.line(format!("  content  {}", m.content));
    out.line(format!(
        "  files    {}, {}",
        count(m.samples.len() as u64, "sample", "samples"),
        size(m.samples.iter().map(|s| s.size).sum())
    ));
    if let Some(cover) = &m.cover {
        out.line(format!("  cover    {cover} (free to view, in the pack's previews)"));
    }
    if let Some(payment) = &m.payment {
        out.line(format!(
            "  payment  {}{}",
            payment.text,
            payment.url.as_ref().map_or(String::new(), |u| format!(" ({u})"))
        ));
    }
    if let Some(from) = m.licenses_from.filter(|from| *from > 1) {
        out.line(format!("  upgrade  licences of versions before {from} do not cover this version"));
    }
    if !m.description.is_empty() {
        out.line(format!("  {}", m.description));
    }
    out.line("");
    let rows: Vec<Vec<String>> = m
        .samples
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.kind.name().to_string(),
                format!("{:.3}s", s.duration_ms() as f64 / 1000.0),
                format!("{} Hz", s.sample_rate),
                format!("{}ch", s.channels),
                s.bit_depth.map(|b| format!("{b}-bit")).unwrap_or_else(|| "lossy".into()),
                format!("{:.1} dBFS", s.peak_dbfs),
                s.loudness_lufs.map(|l| format!("{l:.1} LUFS")).unwrap_or_default(),
                s.tempo.map(|t| format!("{:.0} bpm", t.bpm)).unwrap_or_default(),
                s.key.map(|k| k.name()).or(s.note.map(|n| n.full_name())).unwrap_or_default(),
            ]
        })
        .collect();
    out.table(&["FILE", "KIND", "LENGTH", "RATE", "CH", "DEPTH", "PEAK", "LOUDNESS", "TEMPO", "KEY"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn retract(home: &Home, out: &Printer, pack_id: &str) -> Result<ExitCode> {
    let answer = Client::connect(home)?.retract(pack_id)?;
    if out.json() {
        out.object(&answer);
    } else {
        out.line(format!("retracted {}", answer["pack_id"].as_str().unwrap_or(pack_id)));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rebuild(home: &Home, out: &Printer) -> Result<ExitCode> {
    let answer = Client::connect(home)?.rebuild_index()?;
    if out.json() {
        out.object(&answer);
    } else {
        out.line(format!("index rebuilt from {} packs", answer["packs"]));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(home: &Home, out: &Printer) -> Result<ExitCode> {
    let report = Client::connect(home)?.check()?;
    if out.json() {
        out.object(&report);
    } else {
        let listed = report.packs.saturating_sub(report.held.len());
        out.line(format!(
            "{} held here, {} only listed (seen on the network); {} indexed, {} queued",
            count(report.held.len() as u64, "pack", "packs"),
            count(listed as u64, "pack", "packs"),
            count(report.indexed as u64, "pack", "packs"),
            report.queued
        ));
        for p in &report.incomplete {
            out.line(format!(
                "incomplete: {:?} ({}) has files missing; `smpl fetch {}` fetches them",
                p.title, p.pack_id, p.pack_id
            ));
        }
        for f in &report.damaged {
            out.line(format!(
                "damaged: {:?} of {:?} ({}): the stored bytes no longer match the pack (a library file \
                 that shares them was edited in place); it is not served or exported, and `smpl fetch {}` \
                 fetches it again",
                f.file, f.title, f.pack_id, f.pack_id
            ));
        }
        for f in &report.edited {
            out.line(format!(
                "edited in the library: {} ({:?}); `smpl fetch {}` writes the original again",
                f.file, f.title, f.pack_id
            ));
        }
        for p in &report.outdated {
            out.line(format!(
                "newer version listed: {:?} ({}) is at version {}; `smpl fetch {}` brings it",
                p.title, p.pack_id, p.seq, p.pack_id
            ));
        }
        for id in &report.index_mismatch {
            out.line(format!("index disagrees with the store on {id} (run `smpl index rebuild`)"));
        }
        if report.ok() {
            out.line("all held packs whole, index consistent");
        }
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn fetch(home: &Home, out: &Printer, pack_id: &str, dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| usage(format!("cannot create {}: {e}", d.display())))?;
            Some(std::fs::canonicalize(&d)?)
        }
        None => None,
    };
    let client = Client::connect(home)?;
    let mut bar = None;
    let mut outcome = None;
    client.fetch(pack_id, dir, |event| {
        match event {
            FetchEvent::Started { bytes, .. } => bar = Some(out.progress(bytes, "fetching")),
            FetchEvent::Progress { bytes } => {
                if let Some(bar) = &bar {
                    bar.set_position(bytes);
                }
            }
            FetchEvent::Done(o) => outcome = Some(o),
            FetchEvent::Error { message } => bail!("{message}"),
        }
        Ok(())
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let o = outcome.context("the node stopped before the fetch finished")?;
    if out.json() {
        out.object(&json!({
            "pack_id": o.pack_id, "path": o.path, "files": o.files, "bytes": o.bytes, "downloaded": o.downloaded,
        }));
    } else {
        out.line(format!(
            "fetched {} ({}, {} downloaded) into {}",
            count(o.files as u64, "file", "files"),
            size(o.bytes),
            size(o.downloaded),
            o.path.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(home: &Home, out: &Printer) -> Result<ExitCode> {
    let status = Client::connect(home)?.status()?;
    if out.json() {
        out.object(&status);
        return Ok(ExitCode::SUCCESS);
    }
    out.line(format!("node {}", status.node_id));
    out.line(format!("{} listings held, {} waiting to be indexed", status.listings, status.index_queue));
    let relay = status.relay_bytes;
    out.line(format!(
        "through iroh relays: {} bytes sent, {} received; {} forwarded for others",
        relay.sent, relay.received, relay.forwarded
    ));
    out.line("dropped or refused since the node started:");
    let rows: Vec<Vec<String>> = serde_json::to_value(&status.dropped)?
        .as_object()
        .into_iter()
        .flatten()
        .map(|(what, n)| vec![what.replace('_', " "), n.to_string()])
        .collect();
    out.table(&["WHAT", "COUNT"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn peers(home: &Home, out: &Printer) -> Result<ExitCode> {
    let peers = Client::connect(home)?.peers()?;
    if out.json() {
        for p in &peers {
            out.object(p);
        }
    } else {
        let rows: Vec<Vec<String>> = peers
            .iter()
            .map(|p| {
                let path = match &p.relay {
                    Some(relay) => format!("{} via {}", p.path, &relay.to_hex()[..12]),
                    None => p.path.clone(),
                };
                let rtt = p.rtt_ms.map_or("-".into(), |ms| format!("{ms:.1} ms"));
                vec![p.node_id.to_string(), path, rtt, p.nat.clone(), p.addrs.join(" ")]
            })
            .collect();
        out.table(&["NODE", "PATH", "RTT", "OUR NAT", "ADDRESSES"], &rows);
    }
    Ok(if peers.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn connect(home: &Home, out: &Printer, addr: &str) -> Result<ExitCode> {
    let peer = Client::connect(home)?.connect_to(addr)?;
    if out.json() {
        out.object(&peer);
    } else {
        out.line(format!("connected to {}; it will be dialled again after restarts", peer.node_id));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn share(home: &Home, out: &Printer, pack_id: &str) -> Result<ExitCode> {
    let answer = Client::connect(home)?.ticket(pack_id)?;
    if out.json() {
        out.object(&answer);
    } else {
        out.line(answer["ticket"].as_str().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn audition(
    home: &Home,
    out: &Printer,
    pack_id: &str,
    sample: &str,
    output: Option<PathBuf>,
) -> Result<ExitCode> {
    let preview = Client::connect(home)?.preview(pack_id, sample)?;
    let path = match output {
        Some(target) => {
            std::fs::copy(&preview.path, &target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            target
        }
        None => preview.path.clone(),
    };
    if out.json() {
        out.object(&json!({
            "pack_id": preview.pack_id, "sample": preview.sample, "path": path, "bytes": preview.bytes,
            "fetched": preview.fetched, "millis": preview.millis,
        }));
    } else {
        let how = if preview.fetched { "fetched" } else { "cached" };
        out.line(format!(
            "{} ({}, {how} in {:.0} ms): {}",
            preview.sample,
            size(preview.bytes),
            preview.millis,
            path.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn recommend(home: &Home, out: &Printer, limit: usize) -> Result<ExitCode> {
    let picks = Client::connect(home)?.recommend(limit)?;
    if out.json() {
        for p in &picks {
            out.object(p);
        }
    } else {
        let rows: Vec<Vec<String>> = picks
            .iter()
            .map(|p| {
                vec![
                    p.pack_id.to_string()[..12].to_string(),
                    p.title.clone(),
                    p.author_name.clone(),
                    p.price.as_ref().map_or("free".to_string(), |p| p.to_string()),
                    p.reason.clone(),
                ]
            })
            .collect();
        out.table(&["PACK", "TITLE", "AUTHOR", "PRICE", "WHY"], &rows);
    }
    if picks.is_empty() {
        out.note("nothing to recommend yet: fetch or buy a pack first, and let listings arrive");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_filters_are_read_the_ways_producers_write_them() {
        let max = smpl_protocol::limits::MAX_BPM;
        assert_eq!(parse_bpm("120..128").unwrap(), (120.0, 128.0));
        assert_eq!(parse_bpm("120-128").unwrap(), (120.0, 128.0));
        assert_eq!(parse_bpm(" 128..120 ").unwrap(), (120.0, 128.0));
        assert_eq!(parse_bpm("125").unwrap(), (123.0, 127.0));
        assert_eq!(parse_bpm("120..").unwrap(), (120.0, max));
        assert_eq!(parse_bpm("..130").unwrap(), (0.0, 130.0));
        for bad in ["", "..", "fast", "120..fast", "-", "nan", "1e99999"] {
            assert!(parse_bpm(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prices_take_a_decimal_comma_a_real_currency_and_a_sane_amount() {
        let usd = |minor| Price { amount_minor: minor, currency: "USD".into() };
        assert_eq!(parse_price("4.99", "usd").unwrap(), usd(499));
        assert_eq!(parse_price("4,99", "USD").unwrap(), usd(499));
        assert_eq!(parse_price("5", "USD").unwrap(), usd(500));
        assert_eq!(parse_price("4,9", "USD").unwrap(), usd(490));
        for bad in ["1,000.50", "4.999", "99999999999", "10000.01", "-1", "", "4.99.1"] {
            assert!(parse_price(bad, "USD").is_err(), "{bad:?}");
        }
        for bad in ["bitcoin", "BTC", "US", ""] {
            assert!(parse_price("4.99", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_price("10000", "EUR").unwrap().amount_minor, 1_000_000);
    }
}
