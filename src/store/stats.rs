//! Table-wide figures for `sessionctl stats`, exact or from a sample.
//!
//! Stored keys are digests, uniform over their alphabet, so a run of rows
//! in key order is a random sample of the table, and how much of the key
//! space the run covers
//! (`key_fraction` in `src/id.rs`) is the share of the table it is. A large
//! table's counts and distributions are estimated from 16 such runs, started
//! at evenly spaced points of the id space (so a region a stopped purge has
//! just cleaned stands for its own share only; ~0.1 s on ten million rows);
//! the count of sessions with a user comes exact from the user index either
//! way. Tables up to ten samples large, tables whose ids are not spread like
//! generated ones, and every table with [`StatsOptions::exact`], are walked
//! whole in id pages instead: exact counts, and exact size percentiles from
//! a histogram whose memory is bounded by the number of distinct sizes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::DatabaseTier;
use crate::error::Result;
use crate::id::{key_at_fraction, key_fraction};

/// One row's share of the figures, as [`DatabaseMaintenance::stats_rows`](super::DatabaseMaintenance::stats_rows) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    /// The stored id (rows are read in id order after a cursor).
    pub id: String,
    /// Bytes of the stored data (PostgreSQL: of the jsonb value's text form).
    pub size: u64,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Whether it has a user id.
    pub has_user: bool,
}

/// How [`crate::admin::Admin::stats`] reads the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsOptions {
    /// Read every row, however large the table.
    pub exact: bool,
    /// Rows in the sample of a large table (default 100,000). Tables of up
    /// to ten times this are read whole.
    pub sample_rows: u32,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions { exact: false, sample_rows: DEFAULT_SAMPLE_ROWS }
    }
}

impl StatsOptions {
    /// Reads every row (`true`) or samples large tables (`false`, the default).
    pub fn with_exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Rows in the sample of a large table (at least 1).
    pub fn with_sample_rows(mut self, rows: u32) -> Self {
        self.sample_rows = rows.max(1);
        self
    }
}

/// Default rows in a sample.
pub const DEFAULT_SAMPLE_ROWS: u32 = 100_000;

/// Rows per page of an exact walk.
const PAGE_ROWS: u32 = 50_000;

/// What a sample covered, when the figures are estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSample {
    /// Rows read.
    pub rows: u64,
    /// The share of the table they are, 0 to 1.
    pub share: f64,
}

/// Table-wide figures. Sizes are bytes of the stored data (PostgreSQL: of
/// the jsonb value's text form). With a [`sample`](Self::sample), `total`
/// and `active` are estimates scaled from it, and the sizes and expiries are
/// the sample's; `with_user` is always exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseStats {
    /// Rows.
    pub total: u64,
    /// Rows whose expiry is in the future.
    pub active: u64,
    /// Rows with a user id (exact: counted on the user index).
    pub with_user: u64,
    /// Smallest data size.
    pub size_min: u64,
    /// Median data size.
    pub size_median: u64,
    /// 99th percentile data size.
    pub size_p99: u64,
    /// Largest data size.
    pub size_max: u64,
    /// Earliest expiry.
    pub oldest_expiry: Option<DateTime<Utc>>,
    /// Latest expiry.
    pub newest_expiry: Option<DateTime<Utc>>,
    /// `None` when every row was read; otherwise what the sample covered.
    pub sample: Option<StatsSample>,
}

/// Running figures over the rows read so far.
#[derive(Default)]
struct Tally {
    rows: u64,
    active: u64,
    sizes: BTreeMap<u64, u64>,
    oldest: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
}

impl Tally {
    fn add(&mut self, row: &StatsRow, now: DateTime<Utc>) {
        self.rows += 1;
        self.active += u64::from(row.expires_at > now);
        *self.sizes.entry(row.size).or_default() += 1;
        self.oldest = Some(self.oldest.map_or(row.expires_at, |t| t.min(row.expires_at)));
        self.newest = Some(self.newest.map_or(row.expires_at, |t| t.max(row.expires_at)));
    }

    /// The smallest size with at least a share `p` of the rows at or below it.
    fn percentile(&self, p: f64) -> u64 {
        let rank = ((self.rows as f64 * p).ceil() as u64).clamp(1, self.rows.max(1));
        let mut seen = 0;
        for (&size, &count) in &self.sizes {
            seen += count;
            if seen >= rank {
                return size;
            }
        }
        0
    }

    fn finish(self, with_user: u64, sample: Option<StatsSample>) -> DatabaseStats {
        let scale = |n: u64| match sample {
            Some(sample) => (n as f64 / sample.share).round() as u64,
            None => n,
        };
        let total = scale(self.rows).max(with_user);
        DatabaseStats {
            total,
            active: scale(self.active).min(total),
            with_user,
            size_min: self.sizes.keys().next().copied().unwrap_or(0),
            size_median: self.percentile(0.5),
            size_p99: self.percentile(0.99),
            size_max: self.sizes.keys().next_back().copied().unwrap_or(0),
            oldest_expiry: self.oldest,
            newest_expiry: self.newest,
            sample,
        }
    }
}

/// Segments a sample is read in, at evenly spaced points of the id space.
const SEGMENTS: u32 = 16;

/// The figures of `database` at `now`. `progress` hears the share of the
/// table read so far (0 to 1) after every page of an exact walk.
pub(crate) async fn compute(
    database: &dyn DatabaseTier,
    now: DateTime<Utc>,
    options: StatsOptions,
    progress: &mut (dyn FnMut(f64) + Send),
) -> Result<DatabaseStats> {
    let with_user = database.count_with_user().await?;
    if !options.exact {
        let sample_rows = options.sample_rows.max(1);
        let head = database.stats_rows(None, sample_rows.saturating_add(1)).await?;
        if head.len() <= sample_rows as usize {
            // The whole table.
            let mut tally = Tally::default();
            head.iter().for_each(|row| tally.add(row, now));
            progress(1.0);
            return Ok(tally.finish(with_user, None));
        }
        // Keys below `0` (a leading `-`) were not made here and sit
        // outside the space the sample spreads over.
        if head.first().is_some_and(|row| row.id.as_str() >= "0") {
            if let Some(tally) = sample(database, now, sample_rows).await? {
                let sample = StatsSample { rows: tally.tally.rows, share: tally.share };
                progress(1.0);
                return Ok(tally.tally.finish(with_user, Some(sample)));
            }
        }
    }
    let mut tally = Tally::default();
    let mut after: Option<String> = None;
    loop {
        let rows = database.stats_rows(after.as_deref(), PAGE_ROWS).await?;
        rows.iter().for_each(|row| tally.add(row, now));
        match rows.last() {
            Some(last) if rows.len() == PAGE_ROWS as usize => {
                progress(key_fraction(&last.id));
                after = Some(last.id.clone());
            }
            _ => break,
        }
    }
    progress(1.0);
    Ok(tally.finish(with_user, None))
}

/// A sample's tally, with the share of the table its rows are.
struct Sampled {
    tally: Tally,
    share: f64,
}

/// Reads about `sample_rows` rows in [`SEGMENTS`] runs, each starting at an
/// evenly spaced point of the id space, so that no one region (such as the
/// low ids a stopped purge has just cleaned) stands for the table. `None`
/// when the table is too small to be worth estimating (under ten samples)
/// or its ids are not spread like generated ones: runs that overlap the
/// next one, or densities (rows per share of the id space) that differ
/// more than chance allows.
async fn sample(database: &dyn DatabaseTier, now: DateTime<Utc>, sample_rows: u32) -> Result<Option<Sampled>> {
    let per_segment = sample_rows.div_ceil(SEGMENTS).max(1);
    let width = 1.0 / f64::from(SEGMENTS);
    let mut tally = Tally::default();
    let mut share = 0.0;
    let (mut lowest, mut highest) = (f64::INFINITY, 0.0_f64);
    for segment in 0..SEGMENTS {
        let start = f64::from(segment) * width;
        let rows = database.stats_rows(Some(&key_at_fraction(start)), per_segment).await?;
        let end = match rows.last() {
            Some(last) if rows.len() == per_segment as usize => key_fraction(&last.id),
            _ => 1.0,
        };
        let span = end - start;
        if !(span > 0.0 && span < width) || rows.is_empty() {
            return Ok(None);
        }
        rows.iter().for_each(|row| tally.add(row, now));
        share += span;
        let density = rows.len() as f64 / span;
        lowest = lowest.min(density);
        highest = highest.max(density);
    }
    // A run's span has a relative spread of ~1/sqrt(rows); the extremes of
    // 16 runs lie further apart. Allow a ratio of exp(8/sqrt(rows)): 1.11
    // for runs of 6,250 rows, far below what clustered ids give (their runs
    // jump whole empty regions of the id space).
    let allowed = (8.0 / f64::from(per_segment).sqrt()).exp();
    if highest > lowest * allowed || (tally.rows as f64 / share) <= 10.0 * f64::from(sample_rows) {
        return Ok(None);
    }
    Ok(Some(Sampled { tally, share }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(size: u64) -> StatsRow {
        StatsRow { id: String::new(), size, expires_at: Utc::now(), has_user: false }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut tally = Tally::default();
        let now = Utc::now();
        for size in 1..=100 {
            tally.add(&row(size), now);
        }
        tally.add(&row(50), now);
        let stats = tally.finish(0, None);
        assert_eq!((stats.size_min, stats.size_median, stats.size_p99, stats.size_max), (1, 50, 99, 100));
        assert_eq!(stats.total, 101);
    }

    #[test]
    fn an_empty_table_has_zero_figures() {
        let stats = Tally::default().finish(0, None);
        assert_eq!((stats.total, stats.size_median, stats.oldest_expiry), (0, 0, None));
    }

    #[test]
    fn a_sample_scales_counts_but_not_with_user() {
        let mut tally = Tally::default();
        let now = Utc::now();
        for i in 0..100 {
            let mut r = row(10);
            r.expires_at = now + chrono::Duration::hours(if i < 25 { -1 } else { 1 });
            tally.add(&r, now);
        }
        let stats = tally.finish(7, Some(StatsSample { rows: 100, share: 0.01 }));
        assert_eq!((stats.total, stats.active, stats.with_user), (10_000, 7_500, 7));
    }
}
