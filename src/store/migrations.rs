//! The schema, embedded per database from `migrations/<backend>/`.
//!
//! Built at run time from `include_str!` rather than with `sqlx::migrate!`, so
//! the build needs neither sqlx's macros nor a database. The migrator records
//! applied versions in `_sqlx_migrations`, exactly as `sqlx migrate` does.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, sql)` for each backend, oldest first.
const SQLITE: &[(i64, &str, &str)] = &[
    (1, "create sessions", include_str!("../../migrations/sqlite/0001_create_sessions.sql")),
    (2, "purge ticks", include_str!("../../migrations/sqlite/0002_purge_ticks.sql")),
    (3, "user index by id prefix", include_str!("../../migrations/sqlite/0003_user_index_by_id_prefix.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "create sessions", include_str!("../../migrations/postgres/0001_create_sessions.sql")),
    (2, "purge ticks", include_str!("../../migrations/postgres/0002_purge_ticks.sql")),
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
