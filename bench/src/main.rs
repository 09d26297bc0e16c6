//! `smpl-bench`: the benchmark harness. Each subcommand measures one part of smpl
//! against a baseline in the same run and prints a Markdown table (see
//! `docs/BENCHMARKS.md`), with the peak RSS next to each figure.
//!
//! - `search`: the search index (smpl-index) against SQLite FTS5.
//! - `similar`: "similar sounds" queries over a million samples.
//! - `churn`: the search index as a node at its listing budget takes listings in
//!   and evicts others, for several merge settings.
//!
//! Inside: `search`, `similar` and `churn`; from the library, `corpus` (a deterministic
//! catalog of realistic packs and queries), `rng` and `mem`.

mod churn;
mod search;
mod similar;

use clap::{Parser, Subcommand};
use smpl_bench::{corpus, mem, rng};

#[derive(Parser)]
#[command(name = "smpl-bench", about = "Benchmarks for smpl")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Search index build rate and query latency, smpl-index vs SQLite FTS5.
    Search(search::SearchArgs),
    /// Similar-sound queries (descriptor nearest neighbours) on a large index.
    Similar(similar::SimilarArgs),
    /// The index under a node's churn: written, processor time, segments, search
    /// latency, for several merge settings.
    Churn(churn::ChurnArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Search(args) => search::run(args),
        Command::Similar(args) => similar::run(args),
        Command::Churn(args) => churn::run(args),
    }
}
