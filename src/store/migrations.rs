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
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "create sessions", include_str!("../../migrations/postgres/0001_create_sessions.sql")),
    (2, "purge ticks", include_str!("../../migrations/postgres/0002_purge_ticks.sql")),
    (3, "cache tier", include_str!("../../migrations/postgres/0003_cache_tier.sql")),
    (4, "devices", include_str!("../../migrations/postgres/0004_devices.sql")),
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

/// How a database's schema compares with the migrations this build carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// `sqlite` or `postgres`.
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
        let steps = self.pending.iter().map(|s| format!("{} {}", s.version, s.description)).collect::<Vec<_>>();
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
    let pending = steps
        .iter()
        .filter(|(version, _, _)| !applied.iter().any(|(v, _, _)| v == version))
        .map(|&(version, description, _)| SchemaStep { version, description })
        .collect();
    Ok(SchemaStatus { backend, applied: applied.len(), pending })
}
