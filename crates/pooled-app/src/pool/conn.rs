//! [`DbConn`]: a pooled or direct connection for one unit of work, with query timing and
//! connection-level error handling (a broken connection is closed, never reused).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Postgres};
use tokio::sync::OwnedSemaphorePermit;

use super::{DbError, DbInner, QueryKind, Statement};
use crate::request_scope;

enum Inner {
    Pooled(PoolConnection<Postgres>),
    Direct(Option<PgConnection>),
}

/// A connection for one unit of work. Run a statement on `conn.as_mut()`, then pass its result to
/// [`DbConn::finish`], which times it per kind and handles connection-level failures.
pub struct DbConn {
    inner: Inner,
    db: Arc<DbInner>,
    broken: bool,
    /// A fallback connection's place under `DATABASE_FALLBACK_MAX_CONNECTIONS`, given back on drop.
    fallback_permit: Option<OwnedSemaphorePermit>,
    /// When the layer handed the connection out (its use time is recorded on drop).
    acquired_at: Instant,
}

impl DbConn {
    pub(super) fn pooled(c: PoolConnection<Postgres>, db: Arc<DbInner>) -> Self {
        Self {
            inner: Inner::Pooled(c),
            db,
            broken: false,
            fallback_permit: None,
            acquired_at: Instant::now(),
        }
    }

    pub(super) fn direct(
        c: PgConnection,
        db: Arc<DbInner>,
        fallback_permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            inner: Inner::Direct(Some(c)),
            db,
            broken: false,
            fallback_permit,
            acquired_at: Instant::now(),
        }
    }

    /// Whether this connection came from the pool.
    pub fn is_pooled(&self) -> bool {
        matches!(self.inner, Inner::Pooled(_))
    }

    /// Records the statement started at `started` (kind, duration, request counters) and maps its error.
    pub fn finish<T>(
        &mut self,
        kind: QueryKind,
        started: Instant,
        result: Result<T, sqlx::Error>,
    ) -> Result<T, DbError> {
        let took = started.elapsed();
        self.db.stats.record_query(kind, took);
        request_scope::record_query(took);
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.db.stats.query_errors.fetch_add(1, Ordering::Relaxed);
                if is_connection_error(&e) {
                    self.mark_broken();
                    return Err(DbError::Unavailable(e.to_string()));
                }
                Err(DbError::Query(e))
            }
        }
    }

    /// Runs `statement` on this connection and returns its rows, prepared or as one simple
    /// query as `DATABASE_PREPARED_STATEMENTS` says; pass the result to [`DbConn::finish`].
    pub async fn fetch_all<T>(&mut self, statement: Statement<'_>) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let prepared = self.db.settings.prepared_statements;
        statement.fetch_all(self.as_mut(), prepared).await
    }

    /// Like [`DbConn::fetch_all`], the first row if any.
    pub async fn fetch_optional<T>(
        &mut self,
        statement: Statement<'_>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let prepared = self.db.settings.prepared_statements;
        statement.fetch_optional(self.as_mut(), prepared).await
    }

    fn mark_broken(&mut self) {
        if self.broken {
            return;
        }
        self.broken = true;
        self.db.stats.closed_broken.fetch_add(1, Ordering::Relaxed);
        if let Inner::Pooled(c) = &mut self.inner {
            c.close_on_drop();
        }
        self.db.on_failure();
    }
}

/// Errors after which the connection must not be reused: I/O, protocol, and Postgres'
/// connection-exception (08xxx) and operator-intervention (57Pxx, e.g. shutdown) classes.
fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl Deref for DbConn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match &self.inner {
            Inner::Pooled(c) => c,
            Inner::Direct(c) => c
                .as_ref()
                .unwrap_or_else(|| unreachable!("taken only in drop")),
        }
    }
}

impl DerefMut for DbConn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match &mut self.inner {
            Inner::Pooled(c) => c,
            Inner::Direct(c) => c
                .as_mut()
                .unwrap_or_else(|| unreachable!("taken only in drop")),
        }
    }
}

impl AsMut<PgConnection> for DbConn {
    fn as_mut(&mut self) -> &mut PgConnection {
        self
    }
}

impl Drop for DbConn {
    fn drop(&mut self) {
        self.db.stats.use_time.record(self.acquired_at.elapsed());
        // The permit is held until the connection is closed, so Postgres never sees more than the cap.
        let permit = self.fallback_permit.take();
        if let Inner::Direct(c) = &mut self.inner {
            if let Some(conn) = c.take() {
                if !self.broken {
                    self.db
                        .stats
                        .closed_request_end
                        .fetch_add(1, Ordering::Relaxed);
                    // A polite Terminate off the request path; dropping a broken one just closes the socket.
                    if let Ok(handle) = tokio::runtime::Handle::try_current() {
                        handle.spawn(async move {
                            let _ = conn.close().await;
                            drop(permit);
                        });
                    }
                }
            }
        }
    }
}
