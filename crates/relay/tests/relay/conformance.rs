//! The storage conformance suite against SQLite and PostgreSQL.

use backchannel_relay::store::SqliteStore;

backchannel_relay::relay_store_conformance!(|| {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
    (store, dir)
});

#[test]
fn sqlite_runs_in_wal_with_full_sync_and_secure_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    drop(SqliteStore::open(&path).unwrap());
    // Reopening migrates nothing twice.
    drop(SqliteStore::open(&path).unwrap());
    let mode = journal_mode_from_header(&path);
    assert_eq!(mode, "wal");
}

/// Reads the journal mode from the file header: bytes 18 and 19 are 2 in WAL mode.
fn journal_mode_from_header(path: &std::path::Path) -> &'static str {
    let bytes = std::fs::read(path).unwrap();
    if bytes[18] == 2 && bytes[19] == 2 {
        "wal"
    } else {
        "rollback"
    }
}

/// The same suite on a throwaway PostgreSQL cluster (skipped, saying so,
/// where PostgreSQL is not installed; CI installs it).
mod postgres {
    use backchannel_relay::store::PostgresStore;
    use backchannel_testkit::postgres::PgCluster;

    backchannel_relay::relay_store_conformance!(
        optional || {
            let cluster = PgCluster::start()?;
            let store = PostgresStore::open(&cluster.database()).unwrap();
            Some((store, cluster))
        }
    );

    /// Two relay instances on one database.
    mod two_instances {
        use super::*;

        backchannel_relay::relay_store_conformance!(
            two_instances || {
                let cluster = PgCluster::start()?;
                let url = cluster.database();
                let a = PostgresStore::open(&url).unwrap();
                let b = PostgresStore::open(&url).unwrap();
                Some((a, b, cluster))
            }
        );
    }
}
