//! Where a relay keeps its records: a SQLite file (the default) or a
//! PostgreSQL database that several relay instances share.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use backchannel_relay::store::{PostgresStore, RelayStore, SqliteStore};

/// A relay database named on the command line.
#[derive(Clone, Debug)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL address (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl std::str::FromStr for Database {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(
            if s.starts_with("postgres://") || s.starts_with("postgresql://") {
                Database::Postgres(s.to_owned())
            } else {
                Database::Sqlite(PathBuf::from(s))
            },
        )
    }
}

impl std::fmt::Display for Database {
    /// The file, or the address without its password (logs are read by
    /// more people than the database's owner).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

impl Database {
    /// Opens the store; `cap_bytes` (SQLite's size cap, 0 for none) does
    /// not apply to PostgreSQL, whose disk is the database server's.
    pub fn open(&self, cap_bytes: u64) -> anyhow::Result<Arc<dyn RelayStore>> {
        match self {
            Database::Sqlite(path) => {
                let store = SqliteStore::open(path)
                    .with_context(|| format!("opening the relay database {self}"))?;
                if cap_bytes > 0 {
                    store.cap_size(cap_bytes)?;
                }
                Ok(Arc::new(store))
            }
            Database::Postgres(url) => {
                if cap_bytes > 0 {
                    tracing::warn!("db_max_bytes applies to SQLite only: on PostgreSQL, watch the database server's disk");
                }
                let store = PostgresStore::open(url).with_context(|| {
                    format!("opening the relay database {self} (is PostgreSQL running there, and may this user create tables?)")
                })?;
                Ok(Arc::new(store))
            }
        }
    }

    /// Opens an existing database for an operator's command (a missing
    /// SQLite file is a mistyped path, not a new relay).
    pub fn open_existing(&self) -> anyhow::Result<Arc<dyn RelayStore>> {
        if let Database::Sqlite(path) = self {
            if !path.exists() {
                anyhow::bail!("no relay database at {}", path.display());
            }
        }
        self.open(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_shown_without_its_password() {
        let db: Database = "postgres://relay:s3cret@db.internal:5432/bc"
            .parse()
            .unwrap();
        assert_eq!(db.to_string(), "postgres://relay:***@db.internal:5432/bc");
        let db: Database = "postgresql://relay@db/bc".parse().unwrap();
        assert_eq!(db.to_string(), "postgresql://relay@db/bc");
        let db: Database = "relay.db".parse().unwrap();
        assert!(matches!(db, Database::Sqlite(_)));
    }
}
