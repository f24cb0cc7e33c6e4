//! The schema, embedded per database from `migrations/<backend>/`.
//!
//! Built at run time from `include_str!` rather than with `sqlx::migrate!`, so
//! the build needs neither sqlx's macros nor a database. The migrator records
//! applied versions in `_sqlx_migrations`, exactly as `sqlx migrate` does.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::error::{Error, Result};

/// `(version, description, sql)` for each backend, oldest first.
const SQLITE: &[(i64, &str, &str)] = &[
    (1, "create sessions", include_str!("../../migrations/sqlite/0001_create_sessions.sql")),
    (2, "purge ticks", include_str!("../../migrations/sqlite/0002_purge_ticks.sql")),
    (3, "user index by id prefix", include_str!("../../migrations/sqlite/0003_user_index_by_id_prefix.sql")),
    (4, "cache tier", include_str!("../../migrations/sqlite/0004_cache_tier.sql")),
    (5, "devices", include_str!("../../migrations/sqlite/0005_devices.sql")),
    (6, "hashed ids", include_str!("../../migrations/sqlite/0006_hashed_ids.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "create sessions", include_str!("../../migrations/postgres/0001_create_sessions.sql")),
    (2, "purge ticks", include_str!("../../migrations/postgres/0002_purge_ticks.sql")),
    (3, "cache tier", include_str!("../../migrations/postgres/0003_cache_tier.sql")),
    (4, "devices", include_str!("../../migrations/postgres/0004_devices.sql")),
    (5, "hashed ids", include_str!("../../migrations/postgres/0005_hashed_ids.sql")),
];

fn migrator(steps: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        steps
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

/// The SQLite schema.
pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The PostgreSQL schema.
pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

/// The SQLite steps, for [`status`].
pub(crate) const SQLITE_STEPS: &[(i64, &str, &str)] = SQLITE;
/// The PostgreSQL steps, for [`status`].
pub(crate) const POSTGRES_STEPS: &[(i64, &str, &str)] = POSTGRES;

/// One migration this build carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStep {
    /// Its version number (the `NNNN` of its file name).
    pub version: i64,
    /// What it does.
    pub description: &'static str,
}

impl std::fmt::Display for SchemaStep {
    /// `6 hashed ids`; the data step [`MOVE_TO_KEYS`] by its description.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            0 => f.write_str(self.description),
            version => write!(f, "{version} {}", self.description),
        }
    }
}

/// How a database's schema compares with the migrations this build carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The tier's backend name (`sqlite`, `postgres`, or a tier's own).
    pub backend: &'static str,
    /// How many of this build's migrations the database has applied.
    pub applied: usize,
    /// The ones it has not, oldest first.
    pub pending: Vec<SchemaStep>,
}

impl SchemaStatus {
    /// Whether every migration is applied.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }

    /// The error for a schema behind this build: one line that names the
    /// command that upgrades it.
    pub fn behind_error(&self) -> Error {
        let steps = self.pending.iter().map(ToString::to_string).collect::<Vec<_>>();
        let message = if self.applied == 0 {
            "this database has no session schema: run `sessionctl migrate` to create it".to_owned()
        } else {
            format!(
                "the session schema of this database is behind this build ({} pending: {}): run `sessionctl migrate`",
                if steps.len() == 1 { "1 migration".to_owned() } else { format!("{} migrations", steps.len()) },
                steps.join(", ")
            )
        };
        Error::Schema { backend: self.backend, message }
    }
}

/// The step of [`SchemaStatus::pending`] that stands for rows still stored
/// under their session id: the schema is applied, the data not yet moved.
pub const MOVE_TO_KEYS: SchemaStep =
    SchemaStep { version: 0, description: "move sessions stored under their id to their key" };

/// Brings a database up to this build: applies the pending migrations
/// `status` lists (read just before), then moves sessions still stored
/// under their id to their keys ([`move_to_keys`]; `progress` hears the
/// rows moved). Touches nothing when `status` is current, so a role without
/// DDL rights can open an up-to-date database. Returns the rows moved.
///
/// # Errors
///
/// [`Error::Migrate`] when a migration fails; the database's errors while
/// moving rows (what moved stays moved: run it again).
pub async fn upgrade(
    database: &dyn super::DatabaseTier,
    status: &SchemaStatus,
    progress: impl FnMut(u64),
) -> Result<u64> {
    if status.pending.iter().any(|step| *step != MOVE_TO_KEYS) {
        database.migrate().await?;
    }
    if status.is_current() {
        return Ok(0);
    }
    move_to_keys(database, progress).await
}

/// Rows moved per batch when moving sessions to their keys, at most.
const KEY_BATCH: u32 = 1_000;

/// Moves every session still stored under its id (written before ids
/// were hashed, or since by an app of an older build) to its key, in
/// batches, each its own transaction, so it can be stopped and run again;
/// `progress` hears the rows moved so far. It ends once a batch finds fewer
/// rows than it could take (caught up with any older app still writing).
/// A batch that times out (large sessions) is retried at half the size.
/// Returns how many rows moved.
///
/// # Errors
///
/// The database's errors; what was moved before one stays moved.
pub async fn move_to_keys(database: &dyn super::DatabaseTier, mut progress: impl FnMut(u64)) -> Result<u64> {
    let mut total = 0;
    let mut limit = KEY_BATCH;
    loop {
        match database.move_to_keys_batch(limit).await {
            Ok(moved) => {
                total += moved;
                if moved > 0 {
                    progress(total);
                }
                if moved < u64::from(limit) {
                    return Ok(total);
                }
            }
            Err(Error::Timeout { .. }) if limit > 1 => limit /= 2,
            Err(other) => return Err(other),
        }
    }
}

/// The key each of these rows under an id moves to. A row whose id is not
/// one this library could have made (written by hand) moves too, to the
/// digest of its text: no cookie could name it either way.
pub(crate) fn keys_to_move(ids: Vec<String>) -> Vec<(String, String)> {
    ids.into_iter()
        .map(|id| {
            let key = crate::SessionKey::of_stored_id(&id).as_str().to_owned();
            (id, key)
        })
        .collect()
}

/// A row of `_sqlx_migrations`: version, success, checksum.
pub(crate) type AppliedRow = (i64, bool, Vec<u8>);

/// Compares the applied migrations (`_sqlx_migrations`, empty when the
/// table is absent) with `steps`. A failed step, one changed since it was
/// applied, or one this build does not know (a newer sessionctl migrated
/// the database) is an error: the schema is not one this build can use.
pub(crate) fn status(
    backend: &'static str,
    steps: &'static [(i64, &'static str, &'static str)],
    applied: &[AppliedRow],
    ids_to_move: bool,
) -> Result<SchemaStatus> {
    let known = migrator(steps);
    let schema_error = |message: String| Error::Schema { backend, message };
    for (version, success, checksum) in applied {
        let Some(step) = known.iter().find(|m| m.version == *version) else {
            let newest = steps.last().map_or(0, |s| s.0);
            return Err(schema_error(format!(
                "this database has schema version {version}, newer than this build knows (up to {newest}): upgrade sessionctl"
            )));
        };
        if !success {
            return Err(schema_error(format!(
                "migration {version} ({}) failed partway and is marked dirty in _sqlx_migrations: finish or undo its changes by hand, then delete its row there and run `sessionctl migrate`",
                step.description
            )));
        }
        if step.checksum.as_ref() != checksum.as_slice() {
            return Err(schema_error(format!(
                "migration {version} ({}) differs from the one applied to this database (its checksum in _sqlx_migrations): this build's schema is not the database's; use the build that migrated it",
                step.description
            )));
        }
    }
    let mut pending: Vec<SchemaStep> = steps
        .iter()
        .filter(|(version, _, _)| !applied.iter().any(|(v, _, _)| v == version))
        .map(|&(version, description, _)| SchemaStep { version, description })
        .collect();
    if ids_to_move {
        pending.push(MOVE_TO_KEYS);
    }
    Ok(SchemaStatus { backend, applied: applied.len(), pending })
}
