//! Reading the engine's rollups over a range of hours from async code: days the engine left
//! in the segments' summaries are read back first ([`engine::Engine::rollups_over`], disk
//! reads) on a blocking thread; days all in memory are read here.

use std::ops::Range;

use datafusion::common::{DataFusionError, Result as DfResult};
use engine::{CampaignSets, Engine, Hours, Rollups};

/// `f` of the rollups with every day of `app`'s `hours` (hour numbers, end exclusive) in
/// memory. An engine error comes back as DataFusion's `External` (the query's error keeps
/// the storage error's kind).
pub(crate) async fn rollups_over<T: Send + 'static>(
    engine: &Engine,
    app: &str,
    hours: Range<i64>,
    f: impl FnOnce(&Rollups) -> T + Send + 'static,
) -> DfResult<T> {
    {
        let r = engine.rollups();
        if r.hour_days_out(app, hours.clone()).is_empty() {
            return Ok(f(&r));
        }
    }
    let (engine, app) = (engine.clone(), app.to_string());
    tokio::task::spawn_blocking(move || engine.rollups_over(&app, hours).map(|r| f(&r)))
        .await
        .map_err(|e| DataFusionError::ExecutionJoin(e))?
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// `app`'s hours over `hours` (see [`rollups_over`]).
pub(crate) async fn hours_over(engine: &Engine, app: &str, hours: Range<i64>) -> DfResult<Hours> {
    let (name, range) = (app.to_string(), hours.clone());
    rollups_over(engine, app, hours, move |r| r.hours(&name, range)).await
}

/// `app`'s campaign days over `hours` (see [`rollups_over`]).
pub(crate) async fn campaigns_over(
    engine: &Engine,
    app: &str,
    hours: Range<i64>,
) -> DfResult<CampaignSets> {
    let (name, range) = (app.to_string(), hours.clone());
    rollups_over(engine, app, hours, move |r| r.campaigns(&name, range)).await
}
