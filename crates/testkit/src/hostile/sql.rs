//! The hostile relay's hand on either database: each attack is one
//! statement text (SQLite's `?N` placeholders, rewritten as `$N` for
//! PostgreSQL) with loosely typed values, so it is written once.

use std::path::PathBuf;

use pg::{accepts_any, from_pg, to_pg};

/// Which database a relay keeps.
#[derive(Clone, Debug)]
pub enum Db {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL address.
    Postgres(String),
}

/// A value of a column or parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum V {
    /// An integer (any width; a boolean column as 0 or 1).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// NULL.
    Null,
}

impl V {
    /// The integer, or a panic naming what it was.
    pub fn int(&self) -> i64 {
        match self {
            V::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The text, or a panic naming what it was.
    pub fn text(&self) -> String {
        match self {
            V::Text(t) => t.clone(),
            other => panic!("not text: {other:?}"),
        }
    }

    /// The bytes, or a panic naming what it was.
    pub fn blob(&self) -> Vec<u8> {
        match self {
            V::Blob(b) => b.clone(),
            other => panic!("not bytes: {other:?}"),
        }
    }
}

impl From<i64> for V {
    fn from(i: i64) -> Self {
        V::Int(i)
    }
}

impl From<u64> for V {
    fn from(i: u64) -> Self {
        V::Int(i as i64)
    }
}

impl From<u32> for V {
    fn from(i: u32) -> Self {
        V::Int(i64::from(i))
    }
}

impl From<&str> for V {
    fn from(s: &str) -> Self {
        V::Text(s.to_owned())
    }
}

impl From<&[u8]> for V {
    fn from(b: &[u8]) -> Self {
        V::Blob(b.to_vec())
    }
}

impl From<Vec<u8>> for V {
    fn from(b: Vec<u8>) -> Self {
        V::Blob(b)
    }
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(ToSqlOutput::Owned(match self {
            V::Int(i) => Value::Integer(*i),
            V::Text(t) => Value::Text(t.clone()),
            V::Blob(b) => Value::Blob(b.clone()),
            V::Null => Value::Null,
        }))
    }
}

impl rusqlite::types::FromSql for V {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::ValueRef;
        Ok(match v {
            ValueRef::Integer(i) => V::Int(i),
            ValueRef::Text(t) => V::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => V::Blob(b.to_vec()),
            ValueRef::Null => V::Null,
            ValueRef::Real(r) => V::Int(r as i64),
        })
    }
}

/// Conversions to and from PostgreSQL's wire types, by the column's type.
mod pg {
    use super::V;
    use postgres::types::{FromSql, IsNull, ToSql, Type};

    type Failure = Box<dyn std::error::Error + Sync + Send>;

    pub fn accepts_any(ty: &Type) -> bool {
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::TEXT,
            Type::VARCHAR,
            Type::BYTEA,
            Type::BOOL,
            Type::NAME,
        ]
        .contains(ty)
    }

    pub fn to_pg(v: &V, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Failure> {
        match (v, ty) {
            (V::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (V::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (V::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (V::Int(i), _) => i.to_sql(ty, out),
            (V::Text(t), _) => t.as_str().to_sql(ty, out),
            (V::Blob(b), _) => b.as_slice().to_sql(ty, out),
            (V::Null, _) => Ok(IsNull::Yes),
        }
    }

    pub fn from_pg(ty: &Type, raw: &[u8]) -> Result<V, Failure> {
        Ok(match *ty {
            Type::INT2 => V::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => V::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => V::Int(i64::from_sql(ty, raw)?),
            Type::BOOL => V::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::BYTEA => V::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ => V::Text(String::from_sql(ty, raw)?),
        })
    }
}

impl postgres::types::ToSql for V {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        to_pg(self, ty, out)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        accepts_any(ty)
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for V {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        from_pg(ty, raw)
    }

    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(V::Null)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        accepts_any(ty)
    }
}

/// `?1` as `$1`, for PostgreSQL.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Db {
    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Runs a statement; answers the rows it changed.
    pub fn exec(&self, sql: &str, params: &[V]) -> u64 {
        match self {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                c.execute(sql, rusqlite::params_from_iter(params)).unwrap() as u64
            }
            Db::Postgres(url) => on_own_thread(|| {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|v| v as _).collect();
                c.execute(dollars(sql).as_str(), &p).unwrap()
            }),
        }
    }

    /// Runs a query; answers its rows.
    pub fn rows(&self, sql: &str, params: &[V]) -> Vec<Vec<V>> {
        match self {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..n).map(|i| r.get::<_, V>(i)).collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
            Db::Postgres(url) => on_own_thread(|| {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    params.iter().map(|v| v as _).collect();
                c.query(dollars(sql).as_str(), &p)
                    .unwrap()
                    .iter()
                    .map(|r| (0..r.len()).map(|i| r.get::<_, V>(i)).collect())
                    .collect()
            }),
        }
    }
}

/// PostgreSQL's synchronous client may not block inside an async test.
fn on_own_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            super::dollars("DELETE FROM t WHERE a = ?1 AND b = ?12 AND c = '?'"),
            "DELETE FROM t WHERE a = $1 AND b = $12 AND c = '?'"
        );
    }
}
