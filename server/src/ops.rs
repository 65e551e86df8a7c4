//! Operations: the names of the metrics recorded across the server and the process-wide Prometheus recorder
//! that renders them (served by `http::probes`).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const SYNC_REQUESTS: &str = "doorstep_sync_requests_total";
pub const SYNC_SECONDS: &str = "doorstep_sync_duration_seconds";
pub const VISITS_INGESTED: &str = "doorstep_visits_ingested_total";
pub const CHANGES_STORED: &str = "doorstep_changes_stored_total";
pub const CHANGES_REJECTED: &str = "doorstep_sync_rejected_total";
pub const DOC_CACHE_HITS: &str = "doorstep_document_cache_hits_total";
pub const DOC_CACHE_LOADS: &str = "doorstep_document_cache_loads_total";
pub const DOC_CACHE_GRIDS: &str = "doorstep_document_cache_grids";
pub const DOC_CACHE_BYTES: &str = "doorstep_document_cache_bytes";
pub const GRIDS_HELD: &str = "doorstep_grids_held";
pub const GRIDS_HELD_PEAK: &str = "doorstep_grids_held_peak";
pub const SYNCS_WAITING: &str = "doorstep_syncs_waiting";
pub const SYNCS_IN_FLIGHT: &str = "doorstep_syncs_in_flight";
pub const UPLOADS_WAITING: &str = "doorstep_uploads_waiting";
pub const UPLOADS_TURNED_AWAY: &str = "doorstep_uploads_turned_away_total";
pub const WRITE_GATE_WAIT: &str = "doorstep_write_gate_wait_seconds";
pub const WRITE_GATE_HELD: &str = "doorstep_write_gate_held_seconds";

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(SYNC_SECONDS.to_string()),
                &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
            )
            .expect("valid buckets")
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Prefix("doorstep_write_gate_".to_string()),
                &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0],
            )
            .expect("valid buckets")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(SYNC_REQUESTS, "Sync requests by outcome (ok, rejected, error)");
    metrics::describe_histogram!(SYNC_SECONDS, metrics::Unit::Seconds, "Time to answer a sync request");
    metrics::describe_counter!(VISITS_INGESTED, "Visits new to the server, stored and projected");
    metrics::describe_counter!(CHANGES_STORED, "Automerge changes new to the server and stored");
    metrics::describe_counter!(CHANGES_REJECTED, "Sync requests refused because a change was not allowed");
    metrics::describe_counter!(DOC_CACHE_HITS, "Grid documents served from the cache (stored version unchanged)");
    metrics::describe_counter!(DOC_CACHE_LOADS, "Grid documents loaded from the database");
    metrics::describe_gauge!(DOC_CACHE_GRIDS, "Grids with a lock slot (and possibly a cached document) in memory");
    metrics::describe_gauge!(
        DOC_CACHE_BYTES,
        "Estimated memory of the cached grid documents, bounded by --doc-cache-mb"
    );
    metrics::describe_gauge!(GRIDS_HELD, "Grids locked by requests now: their documents stay in memory");
    metrics::describe_gauge!(GRIDS_HELD_PEAK, "Most grids locked by requests at once since the server started");
    metrics::describe_gauge!(SYNCS_WAITING, "Writing syncs waiting for admission (--max-concurrent-syncs)");
    metrics::describe_gauge!(SYNCS_IN_FLIGHT, "Sync requests being received or answered now");
    metrics::describe_gauge!(UPLOADS_WAITING, "Photo uploads waiting for their turn, which yields to the syncs");
    metrics::describe_counter!(UPLOADS_TURNED_AWAY, "Photo uploads answered busy (503) after waiting for a turn");
    metrics::describe_histogram!(
        WRITE_GATE_WAIT,
        metrics::Unit::Seconds,
        "SQLite: time a write transaction waited for the one writer's turn"
    );
    metrics::describe_histogram!(
        WRITE_GATE_HELD,
        metrics::Unit::Seconds,
        "SQLite: time a write transaction held the one writer's turn; their sum over time is the writer's load"
    );
}
