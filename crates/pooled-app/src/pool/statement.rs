//! How the workload's statements reach Postgres (`DATABASE_PREPARED_STATEMENTS`).
//!
//! Prepared (the default): sqlx's extended protocol, each statement parsed once per connection
//! under a name and cached. Not prepared: the statement goes as one simple-query message with
//! its parameters written as typed literals, so no prepared statement exists at all. That is
//! what a transaction-pooling PgBouncer before 1.21 needs: it hands out a server connection per
//! transaction, so a named statement parsed on one server connection is missing (or another
//! client's) on the next, and even sqlx's unnamed statements break, because sqlx sends a Sync
//! between Parse/Describe and Bind/Execute, which ends PgBouncer's "transaction" in between.
//! Measured with 8 instances × 20 connections through PgBouncer 1.18 (transaction mode, 20
//! server connections): docs/services.md.

use std::fmt::Write as _;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::FromRow;

/// One parameter value; the kinds the workload binds.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int(i64),
    Ints(&'a [i64]),
    Text(&'a str),
    Bool(bool),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl<'a> From<&'a [i64]> for Param<'a> {
    fn from(v: &'a [i64]) -> Self {
        Param::Ints(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

/// A statement of the app's own (`$1`, `$2`… placeholders, none inside quoted text) and its
/// parameters.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    sql: &'a str,
    params: Vec<Param<'a>>,
}

impl<'a> Statement<'a> {
    pub fn new(sql: &'a str) -> Self {
        Self {
            sql,
            params: Vec::new(),
        }
    }

    /// Adds the next parameter (`$1` first).
    pub fn bind(mut self, value: impl Into<Param<'a>>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Every row, decoded as `T`.
    pub async fn fetch_all<T>(
        self,
        conn: &mut PgConnection,
        prepared: bool,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        if prepared {
            return self.prepared::<T>().fetch_all(conn).await;
        }
        let sql = self.inlined()?;
        let rows = sqlx::Executor::fetch_all(conn, sql.as_str()).await?;
        rows.iter().map(T::from_row).collect()
    }

    /// The first row, if any, decoded as `T`.
    pub async fn fetch_optional<T>(
        self,
        conn: &mut PgConnection,
        prepared: bool,
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        if prepared {
            return self.prepared::<T>().fetch_optional(conn).await;
        }
        let sql = self.inlined()?;
        let row = sqlx::Executor::fetch_optional(conn, sql.as_str()).await?;
        row.as_ref().map(T::from_row).transpose()
    }

    fn prepared<T>(
        &self,
    ) -> sqlx::query::QueryAs<'a, sqlx::Postgres, T, sqlx::postgres::PgArguments>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        let mut q = sqlx::query_as::<_, T>(self.sql);
        for p in &self.params {
            q = match *p {
                Param::Int(v) => q.bind(v),
                Param::Ints(v) => q.bind(v),
                Param::Text(v) => q.bind(v),
                Param::Bool(v) => q.bind(v),
            };
        }
        q
    }

    /// The SQL with each `$n` replaced by parameter n as a literal of the type a bind would
    /// have given it (`'42'::int8`, `'{1,2}'::int8[]`, `E'…'::text`, `'true'::bool`).
    /// Quoted literals throughout: a negative number cannot turn `x-$1` into a comment, and
    /// `E''` strings escape the same whatever `standard_conforming_strings` says.
    pub(crate) fn inlined(&self) -> Result<String, sqlx::Error> {
        let mut out = String::with_capacity(self.sql.len() + 16 * self.params.len());
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            let n: usize = after[..digits].parse().unwrap_or(0);
            let param = n
                .checked_sub(1)
                .and_then(|i| self.params.get(i))
                .ok_or_else(|| {
                    sqlx::Error::Encode(
                        format!(
                            "statement uses ${n} but has {} parameters",
                            self.params.len()
                        )
                        .into(),
                    )
                })?;
            literal(&mut out, param);
            rest = &after[digits..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn literal(out: &mut String, p: &Param<'_>) {
    // Writing to a String cannot fail.
    let _ = match p {
        Param::Int(v) => write!(out, "'{v}'::int8"),
        Param::Ints(vs) => {
            out.push_str("'{");
            for (i, v) in vs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{v}");
            }
            out.push_str("}'::int8[]");
            Ok(())
        }
        Param::Text(s) => {
            out.push_str("E'");
            for c in s.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out.push_str("'::text");
            Ok(())
        }
        Param::Bool(b) => write!(out, "'{b}'::bool"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_typed_literals_in_place() {
        let ids = [3_i64, -4, 5];
        let st = Statement::new(
            "SELECT $1, $10 FROM t WHERE id = ANY($2) AND s = $3 AND b = $4 AND x-$1 > 0 LIMIT $1",
        )
        .bind(-7_i64)
        .bind(&ids[..])
        .bind("it's a \\ test")
        .bind(true)
        .bind(5_i64)
        .bind(6_i64)
        .bind(7_i64)
        .bind(8_i64)
        .bind(9_i64)
        .bind(10_i64);
        assert_eq!(
            st.inlined().expect("all parameters given"),
            "SELECT '-7'::int8, '10'::int8 FROM t WHERE id = ANY('{3,-4,5}'::int8[]) AND s = E'it''s a \\\\ test'::text AND b = 'true'::bool AND x-'-7'::int8 > 0 LIMIT '-7'::int8"
        );
    }

    #[test]
    fn a_missing_parameter_is_an_error_not_a_panic() {
        let err = Statement::new("SELECT $2").bind(1_i64).inlined();
        assert!(matches!(err, Err(sqlx::Error::Encode(_))), "{err:?}");
        // A `$` without digits is left alone.
        assert_eq!(
            Statement::new("SELECT 'a$b'")
                .inlined()
                .expect("no parameters"),
            "SELECT 'a$b'"
        );
    }
}
