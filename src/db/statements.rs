//! Counts the SQL statements a piece of work sends, so tests can pin a page's statement budget
//! (DESIGN §11) and the request log can show it. Every pooled connection carries the counting
//! instrumentation; a count is kept only inside [`counted`], per task, so concurrent requests on
//! the same server never mix their figures. `RUST_LOG=railyard::sql=trace` logs each statement.

use std::cell::Cell;
use std::future::Future;

use diesel::connection::{Instrumentation, InstrumentationEvent};

tokio::task_local! {
    static STATEMENTS: Cell<u32>;
}

/// Diesel calls this for every query, `BEGIN` and `COMMIT` included, in the task that sends it.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatementCounter;

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            tracing::trace!(target: "railyard::sql", "{query}");
            let _ = STATEMENTS.try_with(|n| n.set(n.get().saturating_add(1)));
        }
    }
}

/// Runs `work` and returns what it returned with the number of statements it sent.
pub async fn counted<F: Future>(work: F) -> (F::Output, u32) {
    STATEMENTS
        .scope(Cell::new(0), async move {
            let out = work.await;
            (out, STATEMENTS.with(Cell::get))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_inside_its_scope() {
        let mut counter = StatementCounter;
        let sql = diesel::sql_query("SELECT 1");
        let query = diesel::debug_query::<diesel::pg::Pg, _>(&sql);
        counter.on_connection_event(InstrumentationEvent::start_query(&query));
        let ((), n) = counted(async {
            counter.on_connection_event(InstrumentationEvent::start_query(&query));
            counter.on_connection_event(InstrumentationEvent::finish_query(&query, None));
            counter.on_connection_event(InstrumentationEvent::start_query(&query));
        })
        .await;
        assert_eq!(n, 2);
    }
}
