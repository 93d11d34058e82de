//! The durable stores of a room's replay, behind one trait, [`ObjectSink`]: [`DiskSink`], the
//! data dir (always there: the replay's home and the spool of the pushes), and [`S3Sink`], a
//! bucket the replay is pushed to so that a CDN or any web server can serve it as standard HLS
//! without townhall, over the S3 REST API (PutObject, HeadBucket, ListObjectsV2, DeleteObject)
//! with aws-sdk-s3. The live window is not here: it is in memory (`stream`), what the origin
//! serves.
//!
//! Decided here:
//! - The SDK's own retries are off: the pusher (`push`) retries with its own backoff and never
//!   skips an object, so a retry policy in two places would only hide time.
//! - Every call has a 10 s operation timeout: a vanished endpoint makes a push fail, not hang.
//! - Errors keep the service's code and message (`InvalidAccessKeyId`, `NoSuchBucket`, ...)
//!   since they end up in logs and `/healthz`, where an operator has to act on them.

use std::future::Future;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Cache-Control of media objects (init sections, parts, segments): their names are never
/// reused, so they never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A failed store operation, with what the store said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {key}: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub key: String,
    pub detail: String,
}

/// Where objects go. Keys are relative to the sink's prefix.
pub trait ObjectSink: Send + Sync + 'static {
    /// Stores `body` under `key`, replacing what was there.
    fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        cache_control: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes every object whose key starts with `prefix`; returns how many.
    fn delete_prefix(&self, prefix: &str) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced, then a
/// rename: a crash leaves the old file or the new one, never half of one. Blocking.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A directory as an object store: keys are file names below it, each written atomically
/// ([`write_atomically`]). Content types and cache rules are not kept: a web server serving
/// the directory decides them.
#[derive(Debug, Clone)]
pub struct DiskSink {
    root: std::path::PathBuf,
}

impl DiskSink {
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl ObjectSink for DiskSink {
    async fn put(&self, key: &str, body: Bytes, _: &'static str, _: &'static str) -> Result<(), StoreError> {
        let path = self.root.join(key);
        let written = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_atomically(&path, &body)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        written.map_err(|err| StoreError { operation: "write", key: key.to_owned(), detail: err.to_string() })
    }

    /// Removes the files and folders whose name below the root starts with `prefix` (all of
    /// them for an empty prefix, and the root itself then).
    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let (root, prefix_owned) = (self.root.clone(), prefix.to_owned());
        let removed = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
            if prefix_owned.is_empty() {
                return match std::fs::remove_dir_all(&root) {
                    Ok(()) => Ok(1),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
                    Err(err) => Err(err),
                };
            }
            let mut count = 0;
            for entry in std::fs::read_dir(&root)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(prefix_owned.trim_end_matches('/')) {
                    if entry.file_type()?.is_dir() {
                        std::fs::remove_dir_all(entry.path())?;
                    } else {
                        std::fs::remove_file(entry.path())?;
                    }
                    count += 1;
                }
            }
            Ok(count)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        removed.map_err(|err| StoreError { operation: "remove", key: prefix.to_owned(), detail: err.to_string() })
    }
}

/// Where the S3 sink writes: the `[s3]` section of townhall's config, documented here where it
/// is defined and, with its defaults, in `config/townhall.toml`. Pushing each room's replay
/// (segments, init sections, `replay.m3u8`) to a bucket lets a CDN or the bucket itself serve
/// it as standard HLS without townhall; the data dir stays the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// The S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    /// Empty (the default): no push.
    pub endpoint: String,
    /// The bucket's region (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// Prepended to every key: objects are `{prefix}{room}/replay.m3u8`, `.../seg-{n}.m4s`.
    pub prefix: String,
    /// Path-style URLs (`endpoint/bucket/key`), as most S3-compatible servers want; false:
    /// virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Credentials; when both are empty, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
    /// are used.
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            region: "us-east-1".into(),
            bucket: String::new(),
            prefix: String::new(),
            path_style: true,
            access_key_id: String::new(),
            secret_access_key: String::new(),
        }
    }
}

impl S3Settings {
    /// Whether replays are pushed at all.
    pub fn enabled(&self) -> bool {
        !self.endpoint.is_empty()
    }
}

/// An S3 bucket (AWS or any S3-compatible server).
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(err: &aws_sdk_s3::error::SdkError<E>) -> String {
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(err).to_string(),
    }
}

impl S3Sink {
    pub fn new(settings: &S3Settings) -> Self {
        let credentials = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.clone(),
            None,
            None,
            "townhall config",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(settings.endpoint.clone())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(10)).build())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
        }
    }

    /// The bucket, as a URL-ish name for logs.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Checks that the bucket is there and the credentials are accepted (HeadBucket).
    pub async fn check(&self) -> Result<(), StoreError> {
        let result = self.client.head_bucket().bucket(&self.bucket).send().await;
        result.map(|_| ()).map_err(|err| {
            // HEAD responses have no body: name the usual causes by status.
            let status = err.raw_response().map(|r| r.status().as_u16());
            let detail = match status {
                Some(403) => {
                    "403 Forbidden: the access key or secret is wrong, or lacks access to the bucket".to_owned()
                }
                Some(404) => "404: no such bucket".to_owned(),
                _ => describe(&err),
            };
            StoreError { operation: "HeadBucket", key: self.bucket.clone(), detail }
        })
    }
}

impl ObjectSink for S3Sink {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &'static str,
        cache_control: &'static str,
    ) -> Result<(), StoreError> {
        let key = format!("{}{key}", self.prefix);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .cache_control(cache_control)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| StoreError { operation: "PutObject", key, detail: describe(&err) })
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StoreError> {
        let prefix = format!("{}{prefix}", self.prefix);
        let mut deleted = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| StoreError {
                    operation: "ListObjectsV2",
                    key: prefix.clone(),
                    detail: describe(&err),
                })?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(|err| StoreError {
                    operation: "DeleteObject",
                    key: key.to_owned(),
                    detail: describe(&err),
                })?;
                deleted += 1;
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(deleted),
            }
        }
    }
}
