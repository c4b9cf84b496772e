//! `fixtures.sql`: SQL files applied, in order, to the run's database before any app instance
//! starts, for apps that neither create nor seed their schema (pooled-app does both itself).
//! Each file goes in one simple-query round trip, so it may hold many statements and
//! dollar-quoted function bodies; an SQL error is reported at its FILE:LINE:COLUMN.

use sqlx::postgres::PgConnection;
use sqlx::Connection;
use std::path::{Path, PathBuf};

/// Why a fixture could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file cannot be read (it existed when the scenario was checked).
    #[error("fixtures.sql {}: cannot read: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    /// Postgres refused the SQL: the scenario's fixture is wrong (exit 2).
    #[error("{}:{line}:{column}: fixtures.sql: {message}", path.display())]
    Sql {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The database could not be reached (exit 3).
    #[error("fixtures.sql: cannot reach the database: {0}")]
    Connect(String),
}

impl FixtureError {
    /// Whether the scenario's SQL is at fault (exit 2) rather than the machine (exit 3).
    pub fn is_usage(&self) -> bool {
        matches!(self, FixtureError::Sql { .. })
    }
}

/// Applies `files` in order to the database at `database_url` (which is never printed).
pub async fn apply(database_url: &str, files: &[PathBuf]) -> Result<(), FixtureError> {
    if files.is_empty() {
        return Ok(());
    }
    let mut conn = PgConnection::connect(database_url)
        .await
        .map_err(|e| FixtureError::Connect(crate::redact::redact_urls(&e.to_string())))?;
    for path in files {
        apply_one(&mut conn, path).await?;
    }
    let _ = conn.close().await;
    Ok(())
}

async fn apply_one(conn: &mut PgConnection, path: &Path) -> Result<(), FixtureError> {
    let text = std::fs::read_to_string(path).map_err(|e| FixtureError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match sqlx::raw_sql(&text).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) => {
            // Postgres reports a 1-based character offset into the query text.
            let offset = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| match pg.position() {
                    Some(sqlx::postgres::PgErrorPosition::Original(o)) => Some(o),
                    _ => None,
                });
            let (line, column) = offset.map_or((1, 1), |o| line_column(&text, o));
            Err(FixtureError::Sql {
                path: path.to_path_buf(),
                line,
                column,
                message: one_line(db.message()),
            })
        }
        Err(e) => Err(FixtureError::Connect(crate::redact::redact_urls(
            &e.to_string(),
        ))),
    }
}

/// 1-based line and column of the 1-based character offset `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(offset.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "SELECT 1;\nSELEC 2;\n";
        assert_eq!(line_column(text, 1), (1, 1));
        assert_eq!(line_column(text, 11), (2, 1));
        assert_eq!(line_column(text, 13), (2, 3));
    }
}
