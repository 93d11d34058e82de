//! Webhooks (issue 6, item 8): what happens in rooms is POSTed, signed, to the configured
//! endpoints, after the Standard Webhooks specification (standardwebhooks.com), so a CRM or a
//! mailer can be wired without code.
//!
//! - [`event`]: the envelope and the signature (pure);
//! - [`queue`]: each endpoint's ordered queue and the retry schedule (pure, time as input);
//! - [`spool`]: undelivered events on disk, so that a restart or a crash loses none;
//! - [`deliver`]: the tokio shell: one task per endpoint, the HTTP client.
//!
//! [`Webhooks::emit`] writes the event to every endpoint's spool before it returns, then wakes
//! their tasks; an event is forgotten once delivered (a 2xx answer) or given up.

pub mod deliver;
pub mod event;
pub mod queue;
pub mod spool;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use event::{Event, EventType, signing_key};
use queue::{EndpointQueue, RetryPolicy};
use spool::Spool;

use crate::config::WebhooksConfig;

/// What the deliveries have done, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStatus {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    /// Events given up (after `max_attempts`) or pushed out of a full queue.
    pub dropped: AtomicU64,
    /// Endpoints whose latest attempt failed.
    pub failing: AtomicU64,
    /// The latest failure (with its endpoint), until every endpoint delivers again.
    pub last_error: Mutex<Option<String>>,
}

impl WebhookStatus {
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One endpoint: its URL, its spool and its queue; its task waits on `wake`.
#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    pub spool: Spool,
    pub queue: Mutex<EndpointQueue>,
    pub wake: tokio::sync::Notify,
}

impl Endpoint {
    fn lock(&self) -> std::sync::MutexGuard<'_, EndpointQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The webhooks of the server; with no `webhooks.urls`, [`emit`](Self::emit) does nothing.
#[derive(Debug)]
pub struct Webhooks {
    endpoints: Vec<Arc<Endpoint>>,
    next_seq: AtomicU64,
    pub status: Arc<WebhookStatus>,
}

impl Webhooks {
    /// Opens every endpoint's spool under `data_dir` and queues what it kept (blocking).
    pub fn open(data_dir: &Path, config: &WebhooksConfig) -> std::io::Result<Self> {
        let policy = RetryPolicy {
            max_attempts: config.max_attempts,
            initial: Duration::from_millis(config.backoff_initial_ms),
            max: Duration::from_millis(config.backoff_max_ms),
        };
        let status = Arc::new(WebhookStatus::default());
        let mut endpoints = Vec::with_capacity(config.urls.len());
        let mut last_seq = 0;
        let now = Instant::now();
        for url in &config.urls {
            let spool = Spool::open(data_dir, url)?;
            let mut queue = EndpointQueue::new(policy, config.queue_max);
            let kept = spool.load()?;
            if !kept.is_empty() {
                tracing::info!(endpoint = %url, pending = kept.len(), "webhook events kept from before the restart");
            }
            for (seq, event) in kept {
                last_seq = last_seq.max(seq);
                for dropped in queue.push(seq, event, now) {
                    status.dropped.fetch_add(1, Ordering::Relaxed);
                    spool.remove(dropped)?;
                }
            }
            endpoints.push(Arc::new(Endpoint {
                url: url.clone(),
                spool,
                queue: Mutex::new(queue),
                wake: tokio::sync::Notify::new(),
            }));
        }
        warn_of_orphans(data_dir, &endpoints);
        // Seqs go on after the highest one on disk: order is kept across restarts.
        let first = last_seq.max(now_ms().max(0) as u64 * 1_000) + 1;
        Ok(Self { endpoints, next_seq: AtomicU64::new(first), status })
    }

    pub fn is_enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Starts one delivery task per endpoint on the current runtime.
    pub fn start(&self, config: &WebhooksConfig) -> Result<(), String> {
        if !self.is_enabled() {
            return Ok(());
        }
        let sender = Arc::new(deliver::Sender::new(config)?);
        for endpoint in &self.endpoints {
            tokio::spawn(deliver::run(endpoint.clone(), sender.clone(), self.status.clone()));
        }
        tracing::info!(endpoints = self.endpoints.len(), "webhooks on");
        Ok(())
    }

    /// Sends an event to every endpoint: on disk before this returns, then delivered in order.
    pub fn emit(&self, kind: EventType, data: Value) {
        if !self.is_enabled() {
            return;
        }
        let event = Event { id: format!("msg_{}", crate::rooms::random_token(24)), kind, at_ms: now_ms(), data };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(event = %event.id, kind = kind.as_str(), seq, "webhook event");
        for endpoint in &self.endpoints {
            if let Err(err) = endpoint.spool.put(seq, &event) {
                // Still sent while the process lives; only a restart would lose it.
                tracing::error!(endpoint = %endpoint.url, event = %event.id, %err, "webhook event not written to disk");
            }
            let dropped = endpoint.lock().push(seq, event.clone(), Instant::now());
            for seq in dropped {
                self.status.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(endpoint = %endpoint.url, seq, "webhook queue full: the oldest event is dropped");
                if let Err(err) = endpoint.spool.remove(seq) {
                    tracing::error!(endpoint = %endpoint.url, seq, %err, "dropped webhook event not removed from disk");
                }
            }
            endpoint.wake.notify_one();
        }
    }

    /// Events waiting, over all endpoints.
    pub fn backlog(&self) -> u64 {
        self.endpoints.iter().map(|e| e.lock().len() as u64).sum()
    }
}

/// Logs the spools of endpoints no longer configured that still hold events: they are kept
/// (and sent again if the URL comes back), never silently deleted.
fn warn_of_orphans(data_dir: &Path, endpoints: &[Arc<Endpoint>]) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("webhooks")) else { return };
    for dir in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        if endpoints.iter().any(|e| e.spool.dir() == dir) {
            continue;
        }
        let pending = std::fs::read_dir(&dir)
            .map(|files| {
                files.filter_map(|f| f.ok()).filter(|f| f.path().extension().is_some_and(|x| x == "json")).count()
            })
            .unwrap_or(0);
        if pending > 0 {
            let url = std::fs::read_to_string(dir.join("endpoint.txt")).unwrap_or_default();
            tracing::warn!(endpoint = %url, dir = %dir.display(), pending, "webhook events kept for an endpoint that is no longer configured");
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
