//! Helpers shared by the query integration tests.

use engine::{ApplyBatch, Engine, Event};
use unmogrowp_query::QueryService;

/// Applies `events` as log entry `index`.
pub(crate) fn apply(engine: &Engine, index: u64, events: &[Event]) {
    engine
        .apply(ApplyBatch::one_entry(
            index,
            events.iter().map(Event::as_ref).collect(),
        ))
        .unwrap();
}

/// The rows of `sql` as strings (columns joined by `|`), in the order returned.
pub(crate) async fn rows(q: &QueryService, sql: &str) -> Vec<String> {
    let (_, batches) = q.run(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c, &Default::default()).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| c.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// The plan `EXPLAIN` prints for `sql`.
pub(crate) async fn explain(q: &QueryService, sql: &str) -> String {
    let (_, batches) = q.run(&format!("EXPLAIN {sql}")).await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}
