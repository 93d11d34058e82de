//! Operations endpoints: `/healthz` (JSON) and `/metrics` (Prometheus text), and the 404.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::SharedState;
use super::problem::Problem;

/// `GET /healthz`: 200 with what is running.
pub async fn healthz(State(state): State<SharedState>) -> Json<serde_json::Value> {
    let m = &state.ingest.metrics;
    // With [s3]: whether the bucket takes our objects, and how many segments wait on disk.
    let s3 = state.s3.as_ref().map(|(sink, status)| {
        let error = status.last_error();
        json!({
            "bucket": sink.describe(),
            "ok": error.is_none(),
            "error": error,
            "backlog_segments": status.backlog.load(Ordering::Relaxed),
        })
    });
    // With [webhooks]: events waiting, and the latest failure while an endpoint keeps failing.
    let hooks = &state.webhooks;
    let webhooks = hooks.is_enabled().then(|| {
        json!({
            "endpoints_failing": hooks.status.failing.load(Ordering::Relaxed),
            "backlog": hooks.backlog(),
            "last_error": hooks.status.last_error(),
        })
    });
    let degraded =
        s3.as_ref().is_some_and(|s| s["ok"] == false) || webhooks.as_ref().is_some_and(|w| w["endpoints_failing"] != 0);
    Json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "s3": s3,
        "webhooks": webhooks,
        "version": env!("CARGO_PKG_VERSION"),
        "udp": state.ingest.udp_addr().to_string(),
        "rooms": state.rooms.len(),
        "sessions": m.sessions_active.load(Ordering::Relaxed),
        "publishers": m.publishers_active.load(Ordering::Relaxed),
        "subscribers": m.subscribers_active.load(Ordering::Relaxed),
    }))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let mut out = String::new();
    state.ingest.metrics.render(&mut out);
    let http = &state.http;
    for (name, help, value) in [
        ("http_requests_total", "HTTP requests received.", http.requests_total.load(Ordering::Relaxed)),
        (
            "http_responses_4xx_total",
            "HTTP responses with a 4xx status.",
            http.responses_4xx_total.load(Ordering::Relaxed),
        ),
        (
            "http_responses_5xx_total",
            "HTTP responses with a 5xx status.",
            http.responses_5xx_total.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP townhall_{name} {help}\n# TYPE townhall_{name} counter\ntownhall_{name} {value}");
    }
    state.origin.requests.render(&mut out);
    if let Some((_, status)) = &state.s3 {
        render_atomics(
            &mut out,
            &[
                ("s3_objects_pushed_total", "counter", "Objects put into the S3 bucket.", &status.objects_pushed),
                ("s3_push_failures_total", "counter", "Failed S3 puts (each is retried).", &status.failures),
                ("s3_backlog_segments", "gauge", "Replay segments on disk not yet in the bucket.", &status.backlog),
            ],
        );
    }
    if state.webhooks.is_enabled() {
        let status = &state.webhooks.status;
        let backlog = AtomicU64::new(state.webhooks.backlog());
        render_atomics(
            &mut out,
            &[
                ("webhooks_delivered_total", "counter", "Webhook events delivered (a 2xx answer).", &status.delivered),
                (
                    "webhooks_failed_attempts_total",
                    "counter",
                    "Webhook delivery attempts that failed (each is retried until max_attempts).",
                    &status.failed_attempts,
                ),
                (
                    "webhooks_dropped_total",
                    "counter",
                    "Webhook events given up after max_attempts or pushed out of a full queue.",
                    &status.dropped,
                ),
                ("webhooks_backlog", "gauge", "Webhook events waiting, over all endpoints.", &backlog),
            ],
        );
    }
    let m = &state.interaction.metrics;
    render_atomics(
        &mut out,
        &[
            ("ws_clients", "gauge", "WebSocket clients connected to /ws/{room}.", &m.clients),
            ("interaction_events_total", "counter", "Interaction events stored and delivered.", &m.events),
            ("ws_resyncs_total", "counter", "WebSocket clients told to resync (fell too far behind).", &m.resyncs),
            ("ws_cut_off_total", "counter", "WebSocket clients disconnected because a send timed out.", &m.cut_off),
        ],
    );
    let _ = writeln!(
        out,
        "# HELP townhall_rooms Rooms that exist.\n# TYPE townhall_rooms gauge\ntownhall_rooms {}",
        state.rooms.len()
    );
    let _ = writeln!(
        out,
        "# HELP townhall_udp_routed_sessions Sessions the UDP mux routes to.\n# TYPE townhall_udp_routed_sessions gauge\ntownhall_udp_routed_sessions {}",
        state.ingest.routed_sessions()
    );
    let mut response = out.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// Prometheus text for counters and gauges kept as atomics: (name, type, help, value).
fn render_atomics(out: &mut String, rows: &[(&str, &str, &str, &AtomicU64)]) {
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP townhall_{name} {help}\n# TYPE townhall_{name} {kind}\ntownhall_{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
}

/// Any other path.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> Problem {
    Problem::not_found("not_found", format!("no such resource: {}", uri.path()))
}
