//! `GET /metrics`: this node's metrics in the Prometheus text format. The HTTP request
//! histogram lives here, in a registry this node owns; the Raft metrics come from the
//! replica (see `raft::metrics`), process metrics (RSS, CPU) from `/proc` on Linux, and
//! the read cache's counters from its stats, read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    exponential_buckets, Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::AppState;

/// The `route` label of a request that matched no route: bounded, never the raw path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub struct HttpMetrics {
    registry: Registry,
    request_duration_seconds: HistogramVec,
    cache_events_total: IntCounterVec,
    /// One scrape at a time: the cache counters are moved forward by differences.
    scrape: Mutex<()>,
}

impl HttpMetrics {
    pub fn new() -> HttpMetrics {
        let registry = Registry::new();
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "ledger_http_request_duration_seconds",
                "HTTP requests by matched route template, method and status code.",
            )
            // 100 µs .. ~26 s.
            .buckets(exponential_buckets(0.000_1, 2.0, 19).expect("valid buckets")),
            &["route", "method", "status"],
        )
        .expect("valid histogram");
        let cache_events_total = IntCounterVec::new(
            Opts::new(
                "ledger_cache_events_total",
                "Account-read cache events (as at /api/v1/admin/cache), by event.",
            ),
            &["event"],
        )
        .expect("valid counter");
        registry
            .register(Box::new(request_duration_seconds.clone()))
            .expect("unique");
        registry
            .register(Box::new(cache_events_total.clone()))
            .expect("unique");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique");
        HttpMetrics {
            registry,
            request_duration_seconds,
            cache_events_total,
            scrape: Mutex::new(()),
        }
    }
}

impl Default for HttpMetrics {
    fn default() -> HttpMetrics {
        HttpMetrics::new()
    }
}

/// Times every request, labelled by the route template it matched (not its path).
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    metrics
        .request_duration_seconds
        .with_label_values(&[route, method.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    let mut families = {
        let _one_at_a_time = metrics.scrape.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = &state.cache {
            let s = cache.stats();
            let events: [(&str, &AtomicU64); 11] = [
                ("hit", &s.hits),
                ("miss", &s.misses),
                ("stale", &s.stale),
                ("error", &s.errors),
                ("breaker_rejection", &s.breaker_rejections),
                ("served_local", &s.served_local),
                ("served_leader", &s.served_leader),
                ("populated", &s.populated),
                ("published", &s.published),
                ("publish_failure", &s.publish_failures),
                ("refreshed", &s.refreshed),
            ];
            for (event, count) in events {
                raft::metrics::advance(
                    &metrics.cache_events_total.with_label_values(&[event]),
                    count.load(Ordering::Relaxed),
                );
            }
        }
        metrics.registry.gather()
    };
    families.extend(state.replica.gather_metrics());
    let mut body = Vec::new();
    match TextEncoder::new().encode(&families, &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                TextEncoder::new().format_type().to_owned(),
            )],
            body,
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"code": "METRICS_FAILED", "message": error.to_string()})),
        )
            .into_response(),
    }
}
