//! Keeps the cost page ready: the billing store changes a few times a day (each `assay cost
//! ingest`), and working out its default view (the daily series, forecast, anomalies, budgets
//! and allocation by service) takes several queries over the whole history. Every [`EVERY`] the
//! server asks for that view: kept per store version and active revision, it is worked out again
//! only after an ingest or an activation (finding out costs a directory listing), so the first
//! person to open the page after one does not wait for it.

use std::sync::Arc;
use std::time::Duration;

use crate::cost_view::{self, CostQuery};
use crate::state::State;

/// How often the store's version is looked at.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// Runs for as long as the server does (a server without a data directory has no store).
pub(crate) async fn run(state: Arc<State>) {
    let Some(data) = state.data.clone() else { return };
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let active = state.active();
        // A view that cannot be worked out is reported when a page asks for it.
        let _ = cost_view::document(Some(&data), &active, &CostQuery::default()).await;
    }
}
