//! The origin's side of a CDN in front of it. RFC 8216bis-17 Appendix B.1 asks the origin to
//! make every viewer's requests identical so that an edge can collapse them; this file adds
//! the two things an operator needs around that:
//!
//! - a shared secret that only the CDN knows, sent by the edge in [`CDN_HEADER`]: with it
//!   required, `/hls/…` answers anyone else with 403 `cdn_only`, so viewers cannot bypass
//!   the cache and load the origin directly;
//! - counters of the requests that reached the origin, by object kind
//!   (`townhall_hls_requests_total{kind}`), which show whether the CDN collapses: with a
//!   working edge it is about one request per object and edge, whatever the audience.
//!
//! The edge configurations that go with it are `config/nginx-edge.conf` and
//! `config/varnish-edge.vcl`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// The request header that carries the shared secret from the CDN edge to the origin.
pub const CDN_HEADER: &str = "x-townhall-cdn";

/// What an origin request asks for, as counted in `townhall_hls_requests_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// The multivariant, replay or live playlist without `_HLS_msn`.
    Playlist,
    /// The live playlist with `_HLS_msn` (blocking reload, §6.2.5.2).
    BlockingPlaylist,
    Part,
    Segment,
    Init,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 5] = [Self::Playlist, Self::BlockingPlaylist, Self::Part, Self::Segment, Self::Init];

    /// The `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Playlist => "playlist",
            Self::BlockingPlaylist => "blocking_playlist",
            Self::Part => "part",
            Self::Segment => "segment",
            Self::Init => "init",
        }
    }
}

/// Requests that reached the origin's handler (past the CDN gate), by object kind. Requests
/// for names that are not HLS files are not counted here (they are 404s).
#[derive(Debug, Default)]
pub struct RequestCounters {
    counts: [AtomicU64; 5],
}

impl RequestCounters {
    pub fn count(&self, kind: ObjectKind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, kind: ObjectKind) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    /// Appends the Prometheus text exposition of the counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP townhall_hls_requests_total LL-HLS requests that reached the origin (behind a CDN: \
             its misses), by object kind.\n# TYPE townhall_hls_requests_total counter"
        );
        for kind in ObjectKind::ALL {
            let _ = writeln!(out, "townhall_hls_requests_total{{kind=\"{}\"}} {}", kind.label(), self.get(kind));
        }
    }
}

/// Middleware of the origin's router when a CDN secret is required: requests without
/// [`CDN_HEADER`] set to the secret get 403 `cdn_only` (never cached: `no-store`).
pub(crate) async fn require_cdn(State(secret): State<Arc<str>>, request: Request, next: Next) -> Response {
    let refused = match request.headers().get(CDN_HEADER) {
        None => "the request has no X-Townhall-CDN header",
        Some(presented) if !same_secret(presented.as_bytes(), secret.as_bytes()) => {
            "the X-Townhall-CDN header does not carry the configured secret (hls.cdn_secret)"
        }
        Some(_) => return next.run(request).await,
    };
    tracing::debug!(path = %request.uri().path(), reason = refused, "HLS request refused: not from the CDN");
    Problem::new(
        StatusCode::FORBIDDEN,
        "cdn_only",
        format!("this origin serves /hls/ only to its CDN (hls.require_cdn): {refused}"),
    )
    .into_response()
}

/// Compares a presented secret with the configured one in time that depends only on the
/// configured secret's length, never on how much of a guess is right.
fn same_secret(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = presented.len() ^ secret.len();
    for (i, s) in secret.iter().enumerate() {
        diff |= usize::from(s ^ presented.get(i).copied().unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"edge-secret-1234", b"edge-secret-1234"));
        for wrong in [&b""[..], b"edge-secret-123", b"edge-secret-12345", b"edge-secret-1235", b"\0dge-secret-1234"] {
            assert!(!same_secret(wrong, b"edge-secret-1234"), "{wrong:?}");
        }
    }

    #[test]
    fn counters_render_as_prometheus_text() {
        let counters = RequestCounters::default();
        counters.count(ObjectKind::Part);
        counters.count(ObjectKind::Part);
        counters.count(ObjectKind::BlockingPlaylist);
        let mut out = String::new();
        counters.render(&mut out);
        assert!(out.contains("# TYPE townhall_hls_requests_total counter\n"), "{out}");
        assert!(out.contains("townhall_hls_requests_total{kind=\"part\"} 2\n"), "{out}");
        assert!(out.contains("townhall_hls_requests_total{kind=\"blocking_playlist\"} 1\n"), "{out}");
        assert!(out.contains("townhall_hls_requests_total{kind=\"init\"} 0\n"), "{out}");
    }
}

#[cfg(test)]
mod router_tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::{Origin, router};

    async fn get(secret: Option<&str>, origin: &Arc<Origin>, presented: Option<&str>) -> (StatusCode, String, String) {
        let mut request = Request::get("/room/part-1.2.m4s");
        if let Some(value) = presented {
            request = request.header(CDN_HEADER, value);
        }
        let response = router(origin.clone(), secret.map(str::to_owned))
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let cache = response.headers()[header::CACHE_CONTROL].to_str().unwrap().to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, cache, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn only_the_cdn_passes_when_a_secret_is_required() {
        let origin = Arc::new(Origin::default());
        let secret = Some("edge-secret-1234");
        for presented in [None, Some("edge-secret-123"), Some("EDGE-SECRET-1234")] {
            let (status, cache, body) = get(secret, &origin, presented).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{presented:?}");
            assert_eq!(cache, "no-store", "a refusal must not be cached for the CDN");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["code"], "cdn_only", "{json}");
            assert!(json["detail"].as_str().unwrap().contains("X-Townhall-CDN"), "{json}");
        }
        assert_eq!(origin.requests.get(ObjectKind::Part), 0, "refused requests are not counted");
        // Past the gate: the room does not exist.
        assert_eq!(get(secret, &origin, Some("edge-secret-1234")).await.0, StatusCode::NOT_FOUND);
        // No secret required: anyone passes.
        assert_eq!(get(None, &origin, None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(origin.requests.get(ObjectKind::Part), 2);
    }
}
