//! The delivery shell: one task per endpoint drives its [`EndpointQueue`](super::queue) with the
//! clock and an HTTP client (hyper-util's pooled client over hyper-rustls: https with the
//! system's root certificates, http for local receivers). Each attempt is a `POST` of the
//! event's body with the Standard Webhooks headers, signed anew with the attempt's timestamp;
//! any 2xx answer delivers it, anything else (or no answer within `webhooks.timeout_ms`) is a
//! failed attempt, retried on the queue's schedule.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::{Method, Request, Uri, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::hmac;

use super::event::{Event, signature, signing_key};
use super::queue::{Failed, Next};
use super::{Endpoint, WebhookStatus};
use crate::config::WebhooksConfig;

/// What every endpoint's task shares: the client, the key, the timeout.
pub struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    key: hmac::Key,
    timeout: Duration,
}

impl Sender {
    pub fn new(config: &WebhooksConfig) -> Result<Self, String> {
        let key = signing_key(&config.secret)?;
        let provider = rustls::crypto::ring::default_provider();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_provider_and_native_roots(provider) {
            Ok(builder) => builder,
            Err(err) => {
                // http:// endpoints still work; https ones fail each attempt with a clear error.
                tracing::warn!(%err, "no system root certificates: https webhook endpoints cannot be verified");
                let tls =
                    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                        .with_safe_default_protocol_versions()
                        .map_err(|e| e.to_string())?
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
            }
        };
        let connector = builder.https_or_http().enable_all_versions().build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(Self { client, key, timeout: Duration::from_millis(config.timeout_ms) })
    }

    /// One attempt: `Ok(status)` for a 2xx answer, else why not.
    async fn attempt(&self, url: &Uri, event: &Event, body: Bytes) -> Result<u16, String> {
        let timestamp = super::now_ms() / 1000;
        let request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, concat!("townhall/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(&self.key, &event.id, timestamp, &body))
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(Err(err)) => Err(error_chain(&err)),
            Ok(Ok(response)) if response.status().is_success() => Ok(response.status().as_u16()),
            Ok(Ok(response)) => Err(format!("answered {}", response.status())),
        }
    }
}

/// An error with its sources ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Delivers one endpoint's events for ever.
pub async fn run(endpoint: Arc<Endpoint>, sender: Arc<Sender>, status: Arc<WebhookStatus>) {
    let url: Uri = match endpoint.url.parse() {
        Ok(url) => url,
        Err(err) => {
            // `validate()` refuses such URLs at start-up; this is only a guard.
            tracing::error!(endpoint = %endpoint.url, %err, "webhook endpoint unusable");
            return;
        }
    };
    let mut failing = false;
    loop {
        let next = {
            let queue = endpoint.lock();
            match queue.next(Instant::now()) {
                Next::Send(pending) => Ok((pending.seq, pending.event.clone(), pending.failed + 1)),
                Next::WaitUntil(at) => Err(Some(at)),
                Next::Idle => Err(None),
            }
        };
        let (seq, event, attempt) = match next {
            Ok(send) => send,
            Err(Some(at)) => {
                // A new event cannot overtake the head, but a wake-up costs nothing.
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = endpoint.wake.notified() => {}
                }
                continue;
            }
            Err(None) => {
                endpoint.wake.notified().await;
                continue;
            }
        };
        let kind = event.kind.as_str();
        match sender.attempt(&url, &event, Bytes::from(event.body())).await {
            Ok(code) => {
                tracing::info!(endpoint = %endpoint.url, event = %event.id, kind, attempt, code, "webhook delivered");
                endpoint.lock().delivered(seq);
                status.delivered.fetch_add(1, Ordering::Relaxed);
                if failing {
                    failing = false;
                    if status.failing.fetch_sub(1, Ordering::Relaxed) == 1 {
                        *status.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                }
                forget(&endpoint, seq);
            }
            Err(err) => {
                status.failed_attempts.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    failing = true;
                    status.failing.fetch_add(1, Ordering::Relaxed);
                }
                *status.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{}: {err}", endpoint.url));
                let outcome = endpoint.lock().failed(seq, Instant::now());
                match outcome {
                    Failed::RetryAt(at) => {
                        let retry_in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64;
                        tracing::warn!(endpoint = %endpoint.url, event = %event.id, kind, attempt, %err, retry_in_ms, "webhook attempt failed");
                    }
                    Failed::GaveUp => {
                        status.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(endpoint = %endpoint.url, event = %event.id, kind, attempt, %err, "webhook given up");
                        forget(&endpoint, seq);
                    }
                    Failed::Unknown => {}
                }
            }
        }
    }
}

fn forget(endpoint: &Endpoint, seq: u64) {
    if let Err(err) = endpoint.spool.remove(seq) {
        tracing::error!(endpoint = %endpoint.url, seq, %err, "webhook event not removed from disk: it will be sent again after a restart");
    }
}
