//! Errors as HTTP problem details (RFC 9457): every error response is
//! `application/problem+json` with a status, a title, a precise `detail`, and a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use townhall_ingest::Error as IngestError;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    /// Machine-readable, stable: `no_usable_codec`, `unknown_room`, ...
    pub code: &'static str,
    pub detail: String,
    /// An extension member (RFC 9457 §3.2) saying which of several causes under one `code` it
    /// was: for `unauthorized`, why the token was refused (`revoked`, `expired`, …), so a page
    /// can tell a ban from a stale identity.
    pub reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    r#type: &'static str,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), reason: None }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn with_reason(self, reason: &'static str) -> Self {
        Self { reason: Some(reason), ..self }
    }
}

/// A JSON request body as `T`, or 400 `malformed_json` saying what was `expected` (a sketch of
/// the body, e.g. `{"phase": "live"}`) and what serde found wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|e| Problem::bad_request("malformed_json", format!("expected {expected}: {e}")))
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            r#type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            reason: self.reason,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<IngestError> for Problem {
    fn from(err: IngestError) -> Self {
        let detail = err.to_string();
        match err {
            IngestError::MalformedSdp(_) => Problem::bad_request("malformed_sdp", detail),
            IngestError::BadOffer(_) => Problem::bad_request("bad_offer", detail),
            IngestError::NoUsableCodec(_) => Problem::new(StatusCode::NOT_ACCEPTABLE, "no_usable_codec", detail),
            IngestError::MalformedFragment(_) => Problem::bad_request("malformed_fragment", detail),
            IngestError::UnusableFragment(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unusable_fragment", detail)
            }
            IngestError::StageFull { .. } => Problem::new(StatusCode::CONFLICT, "stage_full", detail),
            IngestError::UnknownPresenter(_) => Problem::not_found("unknown_presenter", detail),
            IngestError::RestartNeedsEtag => {
                Problem::new(StatusCode::PRECONDITION_REQUIRED, "if_match_required", detail)
            }
            IngestError::SessionGone => Problem::not_found("unknown_session", detail),
            IngestError::WebRtc(_) | IngestError::Io(_) => {
                tracing::warn!(%detail, "internal error");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, Problem>;
