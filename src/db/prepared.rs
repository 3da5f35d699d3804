//! Raw SQL that PostgreSQL keeps prepared on each connection.
//!
//! Diesel sends `sql_query` text unprepared every time (it cannot know the text is fixed), so
//! PostgreSQL parses and plans it on every call: for the session lookup that every request makes,
//! and for the engine's audit append, planning cost more than running. [`prepared`] marks a query
//! whose SQL text never changes (no values formatted into it): diesel-async then prepares it once
//! per connection, keyed by its text, and PostgreSQL may settle on a generic plan.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::QueryResult;

/// A query whose SQL text is fixed, so its prepared statement may be kept and reused.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(Q);

/// Marks `query` (a `diesel::sql_query` with a constant text and its binds) as safe to keep
/// prepared. Never use it for SQL built from values: each distinct text would stay prepared on
/// every connection.
pub fn prepared<Q>(query: Q) -> Prepared<Q> {
    Prepared(query)
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the statement cache keys it by its SQL text and bind types.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
