//! `smpl`: the command-line front of a smpl node.
//!
//! `smpl node` runs the daemon in this process; every other command talks to the
//! running node's local HTTP API (see `client`). Output goes through `output`:
//! readable tables by default, JSON lines with `--json`.

mod client;
mod commands;
mod demo;
mod invite;
mod output;
mod trade;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::filter::{FilterExt, LevelFilter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// smpl: a peer-to-peer exchange for music sample packs.
#[derive(Parser, Debug)]
#[command(name = "smpl", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The node's home directory (identity, database, blobs, index).
    #[arg(long, global = true, env = "SMPL_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print JSON (one object per line for lists) instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create this node's identity and config (keeps an existing identity).
    Init {
        /// Your name as shown on the packs you publish.
        #[arg(long)]
        name: Option<String>,
        /// Where fetched packs go (default ~/smpl/library).
        #[arg(long, value_name = "DIR")]
        library: Option<std::path::PathBuf>,
    },
    /// Run the node in the foreground until Ctrl-C.
    Node(commands::NodeArgs),
    /// This node's id, API URL and listen addresses.
    Id,
    /// Analyse a folder of audio, sign it as a pack and publish it.
    Publish(commands::PublishArgs),
    /// Search the local index of packs and samples.
    Search(commands::SearchArgs),
    /// Samples that sound like one sample, from every pack in the local index.
    Similar {
        /// PACK_ID/SAMPLE: a pack id (or prefix) and a sample's file name (or a
        /// unique part of it).
        target: String,
        /// How many similar samples to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Packs you may like, from what is in your library (fetched or bought),
    /// by words and by sound, computed on this node.
    Recommend {
        /// How many packs to recommend.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Show a pack's manifest.
    Show {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
    },
    /// Retract one of your packs (a signed removal).
    Retract {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
    },
    /// Download a pack from whoever serves it, verify it and write its files
    /// under the library folder.
    Fetch {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
        /// Write the files here instead of the library folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Get the free preview clip of one sample (fetched on demand, then cached)
    /// and print where it is, to play before buying.
    Audition {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
        /// The sample's file name, or a unique part of it.
        sample: String,
        /// Copy the clip here.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// The peers this node is connected to.
    Peers,
    /// Listings held, and what the node dropped or refused since it started.
    Status,
    /// Print one line a friend can start from (`smpl connect LINE` or `smpl node
    /// --bootstrap LINE`): this node's id with its direct and relayed addresses.
    Invite,
    /// Connect to a peer by its address (as `smpl id` prints it); the node
    /// remembers it and dials it again after restarts.
    Connect {
        /// A multiaddr ending in /p2p/<peer id>.
        addr: String,
    },
    /// Print an iroh-blobs ticket of a free pack, for stock clients such as
    /// `sendme receive`.
    Share {
        /// The pack id (or a unique prefix of it).
        pack_id: String,
    },
    /// Check that every stored pack is whole and the index agrees with the store.
    Check,
    /// Manage the search index.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
    /// Buy a pack from its author: a signed order; the license arrives when the
    /// seller's policy issues it.
    Buy(trade::BuyArgs),
    /// Orders for your packs; approve or reject pending ones.
    Sales(trade::SalesArgs),
    /// Your orders as a buyer, and where each stands.
    Purchases(trade::PurchasesArgs),
    /// The licenses this node holds.
    Licenses(trade::LicensesArgs),
    /// Export or verify a license certificate.
    License {
        #[command(subcommand)]
        command: trade::LicenseCommand,
    },
    /// Open the web app in the browser (a one-time login link), or print the link.
    Ui {
        /// Print the link instead of opening a browser.
        #[arg(long)]
        print: bool,
    },
    /// Run a node with demo packs (generated audio, plus Hydrogen drum kits when
    /// installed) that a newcomer can search right away.
    Demo(commands::NodeArgs),
}

#[derive(Subcommand, Debug)]
enum IndexCommand {
    /// Rebuild the search index from the stored manifests.
    Rebuild,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The log goes to stderr: a running node says what it does (its own events at
    // info, everyone's warnings and errors); other commands only warn. RUST_LOG
    // (or SMPL_LOG) changes it, e.g. RUST_LOG=smpl_node=debug.
    let runs_node = matches!(cli.command, Command::Node(_) | Command::Demo(_));
    let default = if runs_node { "warn,smpl_node=info,smpl=info" } else { "warn" };
    let chosen = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("SMPL_LOG"))
        .ok();
    // gossipsub warns once per message it cannot queue for a slow peer (the whole
    // message in the line), and once per message checked after it left its cache:
    // thousands of lines under a flood. The node counts them (`gossip_unsent`,
    // `gossip_unforwarded` in `smpl status`) and says so at powers of two instead;
    // a chosen RUST_LOG shows gossipsub's own lines again. The same goes for the
    // one error iroh's relay transport logs, "relay_recv_channel closed": with
    // relays off it comes at every stop, as the endpoint closes, and says nothing
    // went wrong.
    let quiet = chosen.is_none();
    let unqueued = tracing_subscriber::filter::filter_fn(move |event| {
        let per_message =
            event.fields().field("rpc").is_some() || event.fields().field("message_id").is_some();
        let closing =
            event.target() == "iroh::socket::transports::relay" && LevelFilter::ERROR == *event.level();
        !(quiet && (event.target().starts_with("libp2p_gossipsub") && per_message || closing))
    });
    let filter = chosen.unwrap_or_else(|| default.into());
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry().with(log.with_filter(filter.and(unqueued))).init();
    let out = output::Printer::new(cli.global.json);
    let home = smpl_node::Home::new(cli.global.home.clone().unwrap_or_else(smpl_node::Home::default_root));
    let result = match cli.command {
        Command::Init { name, library } => commands::init(&home, &out, name, library),
        Command::Node(args) => commands::node(&home, &out, args, false),
        Command::Demo(args) => commands::node(&home, &out, args, true),
        Command::Id => commands::id(&home, &out),
        Command::Ui { print } => ui::ui(&home, &out, print),
        Command::Publish(args) => commands::publish(&home, &out, args),
        Command::Search(args) => commands::search(&home, &out, args),
        Command::Recommend { limit } => commands::recommend(&home, &out, limit),
        Command::Similar { target, limit } => {
            commands::search(&home, &out, commands::SearchArgs::similar(target, limit))
        }
        Command::Show { pack_id } => commands::show(&home, &out, &pack_id),
        Command::Retract { pack_id } => commands::retract(&home, &out, &pack_id),
        Command::Index { command: IndexCommand::Rebuild } => commands::rebuild(&home, &out),
        Command::Check => commands::check(&home, &out),
        Command::Fetch { pack_id, out: dir } => commands::fetch(&home, &out, &pack_id, dir),
        Command::Peers => commands::peers(&home, &out),
        Command::Status => commands::status(&home, &out),
        Command::Invite => invite::invite(&home, &out),
        Command::Connect { addr } => commands::connect(&home, &out, &addr),
        Command::Audition { pack_id, sample, output } => {
            commands::audition(&home, &out, &pack_id, &sample, output)
        }
        Command::Share { pack_id } => commands::share(&home, &out, &pack_id),
        Command::Buy(args) => trade::buy(&home, &out, args),
        Command::Sales(args) => trade::sales(&home, &out, args),
        Command::Purchases(args) => trade::purchases(&home, &out, args),
        Command::Licenses(args) => trade::licenses(&home, &out, args),
        Command::License { command } => trade::license(&home, &out, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            if e.is::<commands::UsageError>() { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}
