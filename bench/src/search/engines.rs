//! The two engines under test behind one interface: smpl-index, and SQLite FTS5 as
//! the baseline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, params_from_iter, types::Value};
use smpl_index::{Index, IndexOp, IndexOptions, SearchQuery};
use smpl_protocol::Manifest;

use crate::corpus::BenchQuery;

pub trait Engine {
    /// Indexes a batch of packs (timed).
    fn add(&mut self, packs: Vec<Manifest>) -> Result<()>;
    /// Makes everything added durable and searchable (timed as part of the build).
    fn commit(&mut self) -> Result<()>;
    /// Merges segments / optimizes (timed separately).
    fn settle(&mut self) -> Result<()>;
    /// Runs a top-20 query; returns the number of hits and, where the engine computes
    /// it anyway, the total number of matches.
    fn query(&mut self, q: &BenchQuery) -> Result<(usize, Option<usize>)>;
    /// The number of matches of a query.
    fn count(&mut self, q: &BenchQuery) -> Result<usize>;
    fn path(&self) -> &Path;
}

pub const TOP: usize = 20;

/// smpl-index on disk, one commit per batch.
pub struct Smpl {
    index: Index,
    path: PathBuf,
}

impl Smpl {
    pub fn open(path: PathBuf, options: IndexOptions) -> Result<Smpl> {
        let index = Index::open_with(&path, options)
            .with_context(|| format!("opening smpl index in {}", path.display()))?;
        Ok(Smpl { index, path })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn search_query(q: &BenchQuery, packs: bool) -> SearchQuery {
        SearchQuery {
            text: Some(q.words.join(" ")),
            genre: q.genre.clone(),
            kind: q.kind,
            bpm: q.bpm,
            max_price: q.max_price,
            packs,
            limit: TOP,
            ..Default::default()
        }
    }
}

impl Engine for Smpl {
    fn add(&mut self, packs: Vec<Manifest>) -> Result<()> {
        let ops: Vec<IndexOp> = packs.into_iter().map(IndexOp::Upsert).collect();
        Ok(self.index.apply(&ops)?)
    }

    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        Ok(self.index.wait_merges()?)
    }

    fn query(&mut self, q: &BenchQuery) -> Result<(usize, Option<usize>)> {
        let r = self.index.search(&Smpl::search_query(q, false))?;
        Ok((r.hits.len(), Some(r.total)))
    }

    fn count(&mut self, q: &BenchQuery) -> Result<usize> {
        Ok(self.index.search(&Smpl::search_query(q, false))?.total)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// SQLite FTS5: one virtual table with the two text columns and unindexed columns
/// for the filters and the displayed fields, filled in one transaction.
pub struct Fts5 {
    conn: Connection,
    path: PathBuf,
    in_tx: bool,
}

const FTS5_SCHEMA: &str = "
CREATE VIRTUAL TABLE samples USING fts5(
    name, pack,
    genre UNINDEXED, kind UNINDEXED, bpm UNINDEXED, key UNINDEXED, price UNINDEXED,
    author UNINDEXED, pack_id UNINDEXED, sample UNINDEXED, title UNINDEXED,
    author_name UNINDEXED, duration_ms UNINDEXED, created_at UNINDEXED,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO samples(samples, rank) VALUES('rank', 'bm25(2.0, 1.0)');
";

impl Fts5 {
    pub fn open(path: PathBuf) -> Result<Fts5> {
        let conn =
            Connection::open(&path).with_context(|| format!("opening SQLite database {}", path.display()))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        conn.execute_batch(FTS5_SCHEMA).context("creating the FTS5 table (is FTS5 compiled in?)")?;
        Ok(Fts5 { conn, path, in_tx: false })
    }

    fn filters(q: &BenchQuery, sql: &mut String, params: &mut Vec<Value>) {
        params.push(Value::Text(
            q.words.iter().map(|w| format!("\"{}\"", w.replace('"', ""))).collect::<Vec<_>>().join(" AND "),
        ));
        if let Some(g) = &q.genre {
            sql.push_str(" AND genre = ?");
            params.push(Value::Text(g.to_lowercase()));
        }
        if let Some(k) = q.kind {
            sql.push_str(" AND kind = ?");
            params.push(Value::Text(k.name().into()));
        }
        if let Some((lo, hi)) = q.bpm {
            sql.push_str(" AND bpm BETWEEN ? AND ?");
            params.push(Value::Real(f64::from(lo)));
            params.push(Value::Real(f64::from(hi)));
        }
        if let Some(p) = q.max_price {
            sql.push_str(" AND price <= ?");
            params.push(Value::Integer((p * 100.0 + 1e-6).floor() as i64));
        }
    }
}

/// The file name without its extension, then the sample's tags (as smpl indexes it).
fn name_text(name: &str, tags: &[String]) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let mut text = stem.to_string();
    for t in tags {
        text.push('\n');
        text.push_str(t);
    }
    text
}

impl Engine for Fts5 {
    fn add(&mut self, packs: Vec<Manifest>) -> Result<()> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN")?;
            self.in_tx = true;
        }
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO samples(name, pack, genre, kind, bpm, key, price, author, pack_id, \
             sample, title, author_name, duration_ms, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for m in &packs {
            let pack_text = [
                m.title.as_str(),
                m.genre.as_str(),
                &m.tags.join(" "),
                m.author_name.as_str(),
                m.description.as_str(),
            ]
            .join("\n");
            let genre = m.genre.to_lowercase();
            let price = m.price.as_ref().map_or(0, |p| p.amount_minor) as i64;
            let author = m.author.to_hex();
            let pack_id = m.pack_id.to_hex();
            for s in &m.samples {
                insert.execute(rusqlite::params![
                    name_text(&s.name, &s.tags),
                    pack_text,
                    genre,
                    s.kind.name(),
                    s.tempo.map(|t| f64::from(t.bpm)),
                    s.key.map(|k| k.name()),
                    price,
                    author,
                    pack_id,
                    s.name,
                    m.title,
                    m.author_name,
                    s.duration_ms() as i64,
                    m.created_at as i64,
                ])?;
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_tx {
            self.conn.execute_batch("COMMIT")?;
            self.in_tx = false;
        }
        Ok(())
    }

    fn settle(&mut self) -> Result<()> {
        self.conn.execute_batch("INSERT INTO samples(samples) VALUES('optimize')")?;
        Ok(())
    }

    fn query(&mut self, q: &BenchQuery) -> Result<(usize, Option<usize>)> {
        let mut sql = String::from(
            "SELECT pack_id, sample, title, author_name, kind, bpm, key, duration_ms, price, \
             genre, created_at, rank FROM samples WHERE samples MATCH ?",
        );
        let mut params = Vec::new();
        Fts5::filters(q, &mut sql, &mut params);
        sql.push_str(&format!(" ORDER BY rank LIMIT {TOP}"));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            // Read what a hit shows, as smpl does.
            let _: (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let _: Option<f64> = row.get(5)?;
            n += 1;
        }
        Ok((n, None))
    }

    fn count(&mut self, q: &BenchQuery) -> Result<usize> {
        let mut sql = String::from("SELECT count(*) FROM samples WHERE samples MATCH ?");
        let mut params = Vec::new();
        Fts5::filters(q, &mut sql, &mut params);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let n: i64 = stmt.query_row(params_from_iter(params), |r| r.get(0))?;
        Ok(n as usize)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
