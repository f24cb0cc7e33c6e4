//! The conformance kit's cases (`sessionctl::testing`), run on every tier
//! combination in the tree through the same macros an outside backend uses.
//! Each case gets a fresh database.

mod all_tiers {
    sessionctl::session_conformance!(sqlite, crate::harness::sqlite);
    sessionctl::session_conformance!(postgres, crate::harness::postgres);
    sessionctl::session_conformance!(redis_sqlite, crate::harness::redis_sqlite);
    sessionctl::session_conformance!(redis_postgres, crate::harness::redis_postgres);
    sessionctl::session_conformance!(memory_sqlite, crate::harness::memory_sqlite);
    sessionctl::session_conformance!(redis_only, crate::harness::redis_only);
    sessionctl::session_conformance!(memory_only, crate::harness::memory_only);
    sessionctl::session_conformance!(cluster_postgres, crate::harness::cluster_postgres);
    sessionctl::session_conformance!(cluster_only, crate::harness::cluster_only);
    sessionctl::session_conformance!(sentinel_sqlite, crate::harness::sentinel_sqlite);
}

mod with_database {
    sessionctl::database_conformance!(sqlite, crate::harness::sqlite);
    sessionctl::database_conformance!(postgres, crate::harness::postgres);
    sessionctl::database_conformance!(redis_sqlite, crate::harness::redis_sqlite);
    sessionctl::database_conformance!(redis_postgres, crate::harness::redis_postgres);
    sessionctl::database_conformance!(memory_sqlite, crate::harness::memory_sqlite);
    sessionctl::database_conformance!(cluster_postgres, crate::harness::cluster_postgres);
    sessionctl::database_conformance!(sentinel_sqlite, crate::harness::sentinel_sqlite);
}
