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

/// A PostgreSQL server whose commits would not be on its disk when they
/// return is refused, setting by setting, and accepted once durable again.
#[test]
fn a_postgres_server_that_would_not_sync_is_refused() {
    use backchannel_relay::store::PostgresStore;
    let Some(cluster) = backchannel_testkit::postgres::PgCluster::start() else {
        return;
    };
    let url = cluster.database();
    let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let mut set = |setting: &str, value: Option<&str>| {
        let sql = match value {
            Some(v) => format!("ALTER SYSTEM SET {setting} = {v}"),
            None => format!("ALTER SYSTEM RESET {setting}"),
        };
        admin.batch_execute(&sql).unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").unwrap();
        // The postmaster rereads its settings soon after: new sessions show it.
        let want = value.unwrap_or("on");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            let now: String = c.query_one(&format!("SHOW {setting}"), &[]).unwrap().get(0);
            if now == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{setting} stays {now}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
        set(setting, Some("off"));
        let refused = PostgresStore::open(&url).unwrap_err().to_string();
        assert!(refused.contains(&format!("{setting}=off")), "{refused}");
        set(setting, None);
    }
    PostgresStore::open(&url).unwrap();
}
