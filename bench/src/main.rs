//! `smpl-bench`: the benchmark harness. Each subcommand measures one part of smpl
//! against a baseline in the same run and prints a Markdown table (see
//! `docs/BENCHMARKS.md`), with the peak RSS next to each figure.
//!
//! - `search`: the search index (smpl-index) against SQLite FTS5.
//! - `similar`: "similar sounds" queries over a million samples.
//!
//! Inside: `search` and `similar`; from the library, `corpus` (a deterministic
//! catalog of realistic packs and queries), `rng` and `mem`.

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Search(args) => search::run(args),
        Command::Similar(args) => similar::run(args),
    }
}
