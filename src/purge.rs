//! Deleting expired sessions: the loop behind `sessionctl purge-expired`
//! and `serve-cron`, and the leadership lock that keeps replicas from
//! purging at the same time.
//!
//! The purge walks the whole table in short batches
//! ([`Store::purge_expired_batch`]), each a brief write transaction that
//! re-checks expiry in its DELETE, so it never stalls the app's writes for
//! long and never deletes a session refreshed while it runs. It keeps no
//! list of ids, so its memory does not grow with the table, and it can be
//! stopped between any two batches (a signal, a time budget) and simply
//! run again.
//!
//! The operator's durations and (feature `cli`) cron schedules are parsed
//! here too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::record;
use crate::store::{Filter, StateFilter, Store};

/// Default rows per batch window.
pub const DEFAULT_BATCH_SIZE: u32 = 10_000;

/// How a purge runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PurgeOptions {
    /// Rows walked per batch (default 10,000).
    pub batch_size: u32,
    /// Grace period: only sessions expired at least this long ago go.
    pub older_than: Duration,
    /// Stop cleanly once this much time has passed.
    pub max_duration: Option<Duration>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        PurgeOptions { batch_size: DEFAULT_BATCH_SIZE, older_than: Duration::ZERO, max_duration: None }
    }
}

impl PurgeOptions {
    /// Sets [`PurgeOptions::batch_size`].
    pub fn with_batch_size(mut self, rows: u32) -> Self {
        self.batch_size = rows;
        self
    }

    /// Sets [`PurgeOptions::older_than`].
    pub fn with_older_than(mut self, grace: Duration) -> Self {
        self.older_than = grace;
        self
    }

    /// Sets [`PurgeOptions::max_duration`].
    pub fn with_max_duration(mut self, budget: Option<Duration>) -> Self {
        self.max_duration = budget;
        self
    }
}

/// Why a purge stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeEnd {
    /// The whole table was walked.
    Finished,
    /// `max_duration` ran out.
    TimeBudget,
    /// Asked to stop (a signal).
    Interrupted,
}

/// Progress of a purge, reported after every batch, and its final report.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeProgress {
    /// Sessions expired at or before this time are purged.
    pub cutoff: DateTime<Utc>,
    /// Sessions deleted so far.
    pub deleted: u64,
    /// Batches run so far.
    pub batches: u64,
    /// Share of the table walked, 0 to 1.
    pub walked: f64,
    /// Time since the purge started.
    pub elapsed: Duration,
    /// The longest single batch, end to end.
    pub longest_batch: Duration,
    /// The longest time a batch held the write lock (what writers wait for).
    pub longest_write_lock: Duration,
    /// Why it stopped (`None` while running).
    pub end: Option<PurgeEnd>,
    /// How long batches took, for [`batch_p99`](Self::batch_p99).
    batch_times: Box<BatchTimes>,
}

/// Batch durations in buckets a quarter of a doubling wide (within 19% of
/// the true value), from 1 µs to about an hour: a fixed 0.5 KB however
/// many batches a purge runs.
#[derive(Debug, Clone, PartialEq)]
struct BatchTimes([u32; BatchTimes::BUCKETS]);

impl BatchTimes {
    const BUCKETS: usize = 128;

    fn bucket(time: Duration) -> usize {
        let micros = time.as_micros().max(1) as f64;
        ((micros.log2() * 4.0) as usize).min(Self::BUCKETS - 1)
    }

    fn record(&mut self, time: Duration) {
        let bucket = &mut self.0[Self::bucket(time)];
        *bucket = bucket.saturating_add(1);
    }

    /// The upper bound of the bucket holding the `q` quantile.
    fn quantile(&self, q: f64) -> Duration {
        let total: u64 = self.0.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, &n) in self.0.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Duration::from_micros(2f64.powf((bucket + 1) as f64 / 4.0) as u64);
            }
        }
        Duration::MAX
    }
}

impl PurgeProgress {
    /// The 99th percentile of batch durations, end to end (rounded up, to
    /// within 19%).
    pub fn batch_p99(&self) -> Duration {
        self.batch_times.quantile(0.99).min(self.longest_batch)
    }

    /// Deleted rows per second.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.deleted as f64 / seconds } else { 0.0 }
    }

    /// Expired rows still in the part of the table not walked yet, estimated
    /// from what the walked part held (0 once finished).
    pub fn remaining_estimate(&self) -> u64 {
        if self.end == Some(PurgeEnd::Finished) || self.walked <= 0.0 {
            return 0;
        }
        (self.deleted as f64 * (1.0 - self.walked) / self.walked).round() as u64
    }
}

/// A flag that asks a running purge to stop after its current batch.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not raised.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }
    /// Asks the purge to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was asked for.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The cutoff for a grace period: now minus `older_than`.
pub fn cutoff(older_than: Duration) -> DateTime<Utc> {
    // No session expired before year 1 (and every database can compare
    // with it): an age reaching further back purges nothing, rather than
    // wrapping around to "everything expired".
    let floor = DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::UNIX_EPOCH);
    chrono::Duration::from_std(older_than)
        .ok()
        .and_then(|age| record::now().checked_sub_signed(age))
        .map_or(floor, |cutoff| cutoff.max(floor))
}

/// How many sessions a purge with these options would delete now.
///
/// # Errors
///
/// Fails with the database tier's error, or [`Error::Config`](crate::Error::Config) without one.
pub async fn count_expired(store: &Store, options: &PurgeOptions) -> Result<u64> {
    let filter = Filter { state: StateFilter::Expired, ..Filter::default() };
    store.count(&filter, cutoff(options.older_than)).await
}

/// Deletes expired sessions in batches until the table has been walked, the
/// time budget runs out or `stop` is raised; calls `on_batch` after each
/// batch. Purged ids are also dropped from the cache tier.
///
/// # Errors
///
/// Fails with the database tier's error when a batch fails (what earlier batches deleted stays deleted; a
/// rerun goes on), or [`Error::Config`](crate::Error::Config) without a database.
pub async fn purge_expired(
    store: &Store,
    options: &PurgeOptions,
    stop: &StopFlag,
    mut on_batch: impl FnMut(&PurgeProgress),
) -> Result<PurgeProgress> {
    let started = Instant::now();
    let mut progress = PurgeProgress {
        cutoff: cutoff(options.older_than),
        deleted: 0,
        batches: 0,
        walked: 0.0,
        elapsed: Duration::ZERO,
        longest_batch: Duration::ZERO,
        longest_write_lock: Duration::ZERO,
        end: None,
        batch_times: Box::new(BatchTimes([0; BatchTimes::BUCKETS])),
    };
    let mut cursor: Option<String> = None;
    loop {
        if stop.is_raised() {
            progress.end = Some(PurgeEnd::Interrupted);
            break;
        }
        if options.max_duration.is_some_and(|budget| started.elapsed() >= budget) {
            progress.end = Some(PurgeEnd::TimeBudget);
            break;
        }
        let batch_started = Instant::now();
        let batch =
            store.purge_expired_batch(progress.cutoff, cursor.as_deref(), options.batch_size.max(1), false).await?;
        let took = batch_started.elapsed();
        progress.longest_batch = progress.longest_batch.max(took);
        progress.batch_times.record(took);
        progress.longest_write_lock = progress.longest_write_lock.max(batch.write_lock);
        progress.batches += 1;
        progress.deleted += batch.deleted_count;
        progress.walked = batch.progress.clamp(progress.walked, 1.0);
        progress.elapsed = started.elapsed();
        cursor = batch.next;
        if cursor.is_none() {
            progress.walked = 1.0;
            progress.end = Some(PurgeEnd::Finished);
        }
        on_batch(&progress);
        if progress.end.is_some() {
            break;
        }
    }
    progress.elapsed = started.elapsed();
    Ok(progress)
}

/// Tries to become the one replica that purges (see
/// [`DatabasePurge::try_purge_lock`](crate::DatabasePurge::try_purge_lock)).
///
/// # Errors
///
/// Fails with the database tier's error when the lock cannot be asked for.
pub async fn try_lead(store: &Store) -> Result<Option<Box<dyn crate::store::PurgeLock>>> {
    store.try_purge_lock().await
}

/// Parses a duration such as `90s`, `15m`, `2h30m`, `7d`, `250ms`.
///
/// # Errors
///
/// A one-line message when the text is not a number followed by a unit (`ms`, `s`, `m`, `h`, `d`, `w`), or
/// overflows.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; use e.g. 30s, 15m, 2h, 7d".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration; use e.g. 30s, 15m, 2h, 7d"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds_per: u64 = match unit {
            "ms" => {
                total =
                    total.checked_add(Duration::from_millis(number)).ok_or_else(|| format!("{text:?}: too large"))?;
                continue;
            }
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "" => return Err(format!("{text:?}: missing unit after {number} (ms, s, m, h, d, w)")),
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d, w)")),
        };
        let seconds = number.checked_mul(seconds_per).ok_or_else(|| format!("{text:?}: too large"))?;
        total = total.checked_add(Duration::from_secs(seconds)).ok_or_else(|| format!("{text:?}: too large"))?;
    }
    Ok(total)
}

/// Parses a purge schedule in cron syntax: crontab's 5 fields (seconds = 0
/// is added in front) or the `cron` crate's 6-7 with seconds first.
///
/// Here rather than in the binary so the fuzz targets and tests reach it;
/// behind the `cli` feature, which is what brings the `cron` crate.
///
/// # Errors
///
/// A one-line message with the expected form when the text is not a cron schedule.
#[cfg(feature = "cli")]
pub fn parse_schedule(text: &str) -> std::result::Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = if fields == 5 { format!("0 {text}") } else { text.to_owned() };
    full.parse::<cron::Schedule>().map_err(|e| {
        let reason = e.to_string();
        let reason =
            reason.lines().map(str::trim).rfind(|l| !l.is_empty() && *l != "^").unwrap_or("invalid").to_owned();
        format!(
            "{text:?} is not a cron schedule ({reason}): expected 5 fields as in crontab, minute hour day-of-month month day-of-week (or 6-7 with seconds first), e.g. \"*/15 * * * *\" for every 15 minutes or \"0 3 * * *\" for 3 a.m."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_p99_is_within_a_bucket_of_the_true_one() {
        let mut times = BatchTimes([0; BatchTimes::BUCKETS]);
        assert_eq!(times.quantile(0.99), Duration::ZERO);
        // 990 batches of 10 ms and 10 of 200 ms: the 99th is 10 ms, the 99.5th 200 ms.
        for i in 0..1000 {
            times.record(Duration::from_millis(if i % 100 == 0 { 200 } else { 10 }));
        }
        let p99 = times.quantile(0.99);
        assert!(p99 >= Duration::from_millis(10) && p99 <= Duration::from_millis(12), "{p99:?}");
        let p995 = times.quantile(0.995);
        assert!(p995 >= Duration::from_millis(200) && p995 <= Duration::from_millis(240), "{p995:?}");
        times.record(Duration::MAX);
        assert_eq!(times.quantile(1.0), Duration::from_micros(2f64.powf(32.0) as u64));
    }

    #[test]
    fn an_age_beyond_the_calendar_purges_nothing() {
        let floor = cutoff(Duration::from_secs(u64::MAX));
        assert_eq!(floor.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(cutoff(Duration::from_secs(1_000_000_000 * 86_400)), floor);
        assert!(cutoff(Duration::from_secs(3600)) > floor);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "5", "m", "5x", "-5s", "1.5h", "99999999999999999999s", "9999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // Milliseconds that overflow the total: an error, not a panic.
        assert!(parse_duration("18446744073709551615s1000ms").is_err());
    }

    #[cfg(feature = "cli")]
    #[test]
    fn schedules_parse_with_crontab_fields_meaning_second_zero() {
        use chrono::TimeZone as _;
        let at = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 1, 1, 0, m, s).unwrap();
        for text in ["*/5 * * * *", "0 */5 * * * *"] {
            let next: Vec<_> = parse_schedule(text).unwrap().after(&at(0, 1)).take(2).collect();
            assert_eq!(next, [at(5, 0), at(10, 0)], "{text}");
        }
        let error = parse_schedule("61 * * * *").unwrap_err();
        assert!(error.starts_with(r#""61 * * * *" is not a cron schedule ("#), "{error}");
    }
}
