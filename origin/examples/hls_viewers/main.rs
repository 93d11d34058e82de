//! `hls_viewers`: a load generator for the LL-HLS origin (RFC 8216bis-17). It is not part of
//! the server: it lives in the origin crate's examples only so that it builds with the
//! workspace (`cargo build --release --workspace --all-targets`) on the workspace's pinned
//! hyper; the `townhall` binary does not contain it. `scripts/bench/hls_viewers.py` drives it
//! (docs/BENCHMARKS.md, "LL-HLS viewers per origin").
//!
//! ```text
//! hls_viewers live URL [--viewers 1000] [--ramp 8] [--settle 2] [--measure 20]
//!                      [--timeout 10] [--start-parts 3] [--max-requests 20000]
//!                      [--identity] [--metrics URL]
//! hls_viewers saturate URL [URL ...] [--connections 500] [--warmup 2] [--measure 8]
//!                      [--timeout 10] [--identity]
//! ```
//!
//! URLs are `http://<loopback IP>:<port>/...`; anything else is refused.
//!
//! **live**: URL is a multivariant playlist. Each viewer has its own HTTP/1.1 keep-alive
//! connection (a new one after an error; no HTTP/2 multiplexing) and follows the live edge as
//! hls.js does in low-latency mode (§6.2.5.2 blocking playlist reload, §4.4.4.9 parts): the
//! multivariant playlist, the media playlist, the init section, the newest `--start-parts`
//! parts (PART-HOLD-BACK), then again and again: a blocking request
//! `live.m3u8?_HLS_msn=M&_HLS_part=P` for the part after the newest one listed, and every part
//! newer than the last one loaded. After a failed request it waits 0.5 s and loads the plain
//! playlist. Viewers join evenly spread over `--ramp` seconds; the measurement window opens
//! `--settle` seconds after the ramp and lasts `--measure` seconds; at its end every viewer
//! stops by itself (no request is started after the window, each request gives up after
//! `--timeout`, a viewer makes at most `--max-requests`). Requests ask for
//! `Accept-Encoding: gzip`, as browsers do (`--identity`: they do not).
//!
//! Definitions (of the figures printed, one JSON line on stdout):
//! - **part ready**: the first instant any viewer learned that the part exists: the earliest
//!   arrival of the response headers of a blocking playlist answer that lists it (or a newer
//!   part). The origin answers every request parked on a part at the wake-up that adds it, so
//!   this is the origin's own availability instant plus the service time of the viewer it
//!   served first. It cannot see an origin that is late to wake even its first viewer; that
//!   shows in `first_answer_after_media_end_ms`: part ready minus the part's media end on the
//!   origin's clock (its segment's EXT-X-PROGRAM-DATE-TIME plus the durations of its parts up
//!   to and including it), i.e. the whole pipeline (encoder, WebRTC, packager, first answer),
//!   which grows with the load if the first answer is late.
//! - **delivery latency**: for every part whose ready instant lies in the window (less its
//!   last 2 s, so that the stop does not cut off the slowest deliveries) and every viewer that
//!   loaded it while following the edge (the start-up parts excluded, parts loaded late to
//!   catch up included): arrival of its last body byte at the viewer minus part ready. It
//!   covers the blocking answer to this viewer, its part request and the part's bytes.
//!   `deliveries_per_part` says how many viewers got each measured part (it should be all).
//! - **requests**: responses completed in the window, by kind; `errors`: failed requests of
//!   the whole run (ramp included), by kind and status (or `timeout`, `connect`, `http`).
//! - `distinct`: parts and blocking playlist URIs first answered in the window; with
//!   `--metrics URL` (the origin's /metrics), `origin_requests` is the growth of its
//!   `townhall_hls_requests_total{kind}` over the window (behind a CDN edge: its misses).
//!
//! **saturate**: `--connections` keep-alive connections each request the URLs in turn, as fast
//! as answers come, for `--warmup` plus `--measure` seconds; prints the requests per second of
//! the window, by status. For comparing servers on a fixed object mix (no blocking: the URLs
//! name objects that exist).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

mod http;
mod playlist;
mod viewer;

use http::*;
use playlist::*;
use viewer::*;

/// A part: (media sequence number, part index).
type Key = (u64, u32);

/// Deliveries of parts that became ready in the last this-many seconds of the window are not
/// measured: the viewers stop at the window's end, so the slowest of them would be cut off.
const TAIL_S: f64 = 2.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("hls_viewers: {message}\nusage: see the top of origin/examples/hls_viewers.rs");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let summary = runtime.block_on(async move {
        match config.mode {
            Mode::Live => live(Arc::new(config)).await,
            Mode::Saturate => saturate(Arc::new(config)).await,
        }
    });
    // Connection tasks still held by a server end with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    println!("{summary}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    Saturate,
}

#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    /// Path and query.
    path: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{url:?}: give a loopback IP address and a port, e.g. 127.0.0.1:8080"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{url:?}: loopback addresses only"));
    }
    Ok(Target { addr, path: if path.is_empty() { "/".into() } else { path.into() } })
}

#[derive(Debug)]
struct Config {
    mode: Mode,
    urls: Vec<Target>,
    viewers: usize,
    ramp: Duration,
    settle: Duration,
    measure: Duration,
    timeout: Duration,
    start_parts: usize,
    max_requests: u64,
    gzip: bool,
    metrics: Option<Target>,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let mode = match args.first().map(String::as_str) {
            Some("live") => Mode::Live,
            Some("saturate") => Mode::Saturate,
            other => return Err(format!("the first argument is the mode, live or saturate, not {other:?}")),
        };
        let mut config = Config {
            mode,
            urls: Vec::new(),
            viewers: if mode == Mode::Live { 1000 } else { 500 },
            ramp: Duration::from_secs(if mode == Mode::Live { 8 } else { 2 }),
            settle: Duration::from_secs(2),
            measure: Duration::from_secs(if mode == Mode::Live { 20 } else { 8 }),
            timeout: Duration::from_secs(10),
            start_parts: 3,
            max_requests: 20_000,
            gzip: true,
            metrics: None,
        };
        let seconds = |v: &str| -> Result<Duration, String> {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{v:?} is not a number of seconds (0-3600)"))
        };
        let count = |v: &str| -> Result<u64, String> {
            v.parse::<u64>().ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| format!("{v:?}: 1-1000000"))
        };
        let mut rest = args[1..].iter();
        while let Some(arg) = rest.next() {
            let mut value = || rest.next().map(String::as_str).ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--viewers" | "--connections" => config.viewers = count(value()?)? as usize,
                // In saturate mode the warm-up plays the ramp's part.
                "--ramp" | "--warmup" => config.ramp = seconds(value()?)?,
                "--settle" => config.settle = seconds(value()?)?,
                "--measure" => config.measure = seconds(value()?)?,
                "--timeout" => config.timeout = seconds(value()?)?.max(Duration::from_millis(100)),
                "--start-parts" => config.start_parts = count(value()?)? as usize,
                "--max-requests" => config.max_requests = count(value()?)?,
                "--identity" => config.gzip = false,
                "--metrics" => config.metrics = Some(parse_url(value()?)?),
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                url => config.urls.push(parse_url(url)?),
            }
        }
        if mode == Mode::Saturate {
            config.settle = Duration::ZERO;
        }
        match (mode, config.urls.len()) {
            (_, 0) => Err("give a URL".into()),
            (Mode::Live, n) if n > 1 => Err("live mode takes one URL (a multivariant playlist)".into()),
            _ => Ok(config),
        }
    }
}

/// The run's instants, shared by every viewer.
#[derive(Debug)]
struct Clock {
    start: Instant,
    start_unix_ms: f64,
    window_start: Instant,
    window_end: Instant,
}

impl Clock {
    fn new(config: &Config) -> Clock {
        let start = Instant::now();
        let start_unix_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
        let window_start = start + config.ramp + config.settle;
        Clock { start, start_unix_ms, window_start, window_end: window_start + config.measure }
    }

    fn in_window(&self, at: Instant) -> bool {
        (self.window_start..=self.window_end).contains(&at)
    }

    fn unix_ms(&self, at: Instant) -> f64 {
        self.start_unix_ms + at.duration_since(self.start).as_secs_f64() * 1000.0
    }

    /// The end of everything: the window, a request's timeout, and a margin.
    fn hard_stop(&self, config: &Config) -> Instant {
        self.window_end + config.timeout + Duration::from_secs(5)
    }
}

/// Spawns one task per viewer (or connection) and collects their logs by the hard stop; the
/// ones still running then are aborted and counted.
async fn run_all<F, Fut>(config: &Arc<Config>, clock: &Arc<Clock>, task: F) -> (Vec<Log>, u64)
where
    F: Fn(Arc<Config>, Arc<Clock>, usize) -> Fut,
    Fut: std::future::Future<Output = Log> + Send + 'static,
{
    let handles: Vec<JoinHandle<Log>> =
        (0..config.viewers).map(|i| tokio::spawn(task(config.clone(), clock.clone(), i))).collect();
    let hard_stop = tokio::time::Instant::from_std(clock.hard_stop(config));
    let mut logs = Vec::with_capacity(handles.len());
    let mut unfinished = 0;
    for mut handle in handles {
        match tokio::time::timeout_at(hard_stop, &mut handle).await {
            Ok(Ok(log)) => logs.push(log),
            Ok(Err(_)) => unfinished += 1,
            Err(_) => {
                handle.abort();
                unfinished += 1;
            }
        }
    }
    (logs, unfinished)
}

/// `townhall_hls_requests_total{kind}` from the origin's /metrics, at `at`.
fn sample_metrics(config: &Arc<Config>, clock: &Arc<Clock>, at: Instant) -> Option<JoinHandle<Option<Value>>> {
    let target = config.metrics.clone()?;
    let (config, clock) = (config.clone(), clock.clone());
    Some(tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        let mut conn = Conn::new(target.addr, &config, &clock);
        conn.gzip = false;
        let text = conn.get(&target.path).await.ok()?.text().ok()?;
        let counts: serde_json::Map<String, Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("townhall_hls_requests_total{kind=\""))
            .filter_map(|l| l.split_once("\"} "))
            .filter_map(|(kind, n)| Some((kind.to_owned(), Value::from(n.trim().parse::<f64>().ok()? as u64))))
            .collect();
        Some(Value::Object(counts))
    }))
}

/// Nearest-rank percentiles of `values` (sorted here), rounded to 0.1.
fn percentiles(values: &mut [f64], ps: &[(&str, f64)]) -> Value {
    values.sort_by(f64::total_cmp);
    let mut out = serde_json::Map::new();
    for (name, p) in ps {
        let value = if values.is_empty() {
            Value::Null
        } else {
            let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
            json!((values[rank - 1] * 10.0).round() / 10.0)
        };
        out.insert((*name).to_owned(), value);
    }
    out.insert("samples".into(), json!(values.len()));
    Value::Object(out)
}

fn merge_common(logs: &[Log], window_s: f64) -> (Value, u64, Value, BTreeMap<String, u64>) {
    let mut by_kind = [0u64; 6];
    let mut bytes = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for log in logs {
        for (total, n) in by_kind.iter_mut().zip(log.requests) {
            *total += n;
        }
        bytes += log.bytes;
        for (error, n) in &log.errors {
            *errors.entry(error.clone()).or_default() += n;
        }
    }
    let requests: u64 = by_kind.iter().sum();
    let kinds: serde_json::Map<String, Value> = Kind::ALL
        .iter()
        .filter(|k| by_kind[**k as usize] > 0)
        .map(|k| (k.label().into(), json!(by_kind[*k as usize])))
        .collect();
    let rates = json!({
        "requests_per_s": (requests as f64 / window_s).round(),
        "mbit_per_s": (bytes as f64 * 8.0 / window_s / 1e5).round() / 10.0,
    });
    (Value::Object(kinds), requests, rates, errors)
}

async fn live(config: Arc<Config>) -> Value {
    let clock = Arc::new(Clock::new(&config));
    let before = sample_metrics(&config, &clock, clock.window_start);
    let after = sample_metrics(&config, &clock, clock.window_end);
    let (logs, unfinished) = run_all(&config, &clock, |config, clock, i| async move {
        let join_at = clock.start + config.ramp.mul_f64(i as f64 / config.viewers as f64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(join_at)).await;
        let url = config.urls[0].clone();
        let mut viewer = Viewer {
            config: &config,
            clock: &clock,
            conn: Conn::new(url.addr, &config, &clock),
            made: 0,
            log: Log::default(),
        };
        viewer.follow(&url.path).await;
        viewer.log
    })
    .await;

    // Part ready: the earliest answer that lists the part or a newer one.
    let mut first_listing: BTreeMap<Key, (Instant, Option<f64>)> = BTreeMap::new();
    let mut first_target: HashMap<Key, Instant> = HashMap::new();
    for answer in logs.iter().flat_map(|log| &log.answers) {
        let first = first_target.entry(answer.target).or_insert(answer.headers_at);
        *first = (*first).min(answer.headers_at);
        if let Some((key, media_end)) = answer.newest {
            let entry = first_listing.entry(key).or_insert((answer.headers_at, media_end));
            if answer.headers_at < entry.0 {
                *entry = (answer.headers_at, media_end.or(entry.1));
            }
        }
    }
    let mut ready: HashMap<Key, Instant> = HashMap::new();
    let mut earliest: Option<Instant> = None;
    for (key, (at, _)) in first_listing.iter().rev() {
        let at = earliest.map_or(*at, |e| e.min(*at));
        earliest = Some(at);
        ready.insert(*key, at);
    }
    let measured_until = clock.window_end - Duration::from_secs_f64(TAIL_S.min(config.measure.as_secs_f64() / 2.0));
    let measured: HashSet<Key> = ready
        .iter()
        .filter(|(_, at)| (clock.window_start..measured_until).contains(*at))
        .map(|(key, _)| *key)
        .collect();
    let mut latencies = Vec::new();
    let mut per_part: HashMap<Key, u64> = HashMap::new();
    for (key, done_at) in logs.iter().flat_map(|log| &log.deliveries) {
        if measured.contains(key) {
            latencies.push(done_at.saturating_duration_since(ready[key]).as_secs_f64() * 1000.0);
            *per_part.entry(*key).or_default() += 1;
        }
    }
    let mut counts: Vec<f64> = measured.iter().map(|key| per_part.get(key).copied().unwrap_or(0) as f64).collect();
    let mut pipeline: Vec<f64> =
        measured.iter().filter_map(|key| Some(clock.unix_ms(ready[key]) - first_listing.get(key)?.1?)).collect();
    let mut held: Vec<f64> = logs.iter().flat_map(|log| &log.held_ms).map(|ms| f64::from(*ms)).collect();
    let in_window = |at: &Instant| (clock.window_start..clock.window_end).contains(at);
    let distinct = json!({
        "part": ready.values().filter(|at| in_window(at)).count(),
        "blocking_playlist": first_target.values().filter(|at| in_window(at)).count(),
    });
    let window_s = config.measure.as_secs_f64();
    let (by_kind, requests, rates, errors) = merge_common(&logs, window_s);
    let origin_requests = match (before, after) {
        (Some(before), Some(after)) => match (before.await.ok().flatten(), after.await.ok().flatten()) {
            (Some(Value::Object(before)), Some(Value::Object(after))) => Value::Object(
                after
                    .iter()
                    .map(|(kind, n)| {
                        let delta = n
                            .as_u64()
                            .unwrap_or(0)
                            .saturating_sub(before.get(kind).and_then(Value::as_u64).unwrap_or(0));
                        (kind.clone(), json!(delta))
                    })
                    .collect(),
            ),
            _ => json!("metrics unavailable"),
        },
        _ => Value::Null,
    };
    json!({
        "mode": "live",
        "viewers": config.viewers,
        "gzip": config.gzip,
        "window_s": window_s,
        "requests": requests,
        "requests_per_s": rates["requests_per_s"],
        "mbit_per_s": rates["mbit_per_s"],
        "requests_by_kind": by_kind,
        "errors": errors,
        "unfinished": unfinished,
        "parts_measured": measured.len(),
        "delivery_ms": percentiles(&mut latencies, &[("p50", 0.5), ("p99", 0.99), ("max", 1.0)]),
        "deliveries_per_part": percentiles(&mut counts, &[("min", 0.0), ("median", 0.5)]),
        "first_answer_after_media_end_ms": percentiles(&mut pipeline, &[("p50", 0.5), ("p99", 0.99)]),
        "blocking_held_ms": percentiles(&mut held, &[("p50", 0.5), ("p99", 0.99)]),
        "distinct": distinct,
        "origin_requests": origin_requests,
    })
}

async fn saturate(config: Arc<Config>) -> Value {
    let clock = Arc::new(Clock::new(&config));
    let (logs, unfinished) = run_all(&config, &clock, |config, clock, i| async move {
        let mut conn = Conn::new(config.urls[0].addr, &config, &clock);
        let mut log = Log::default();
        let urls: Vec<(Kind, String)> = config.urls.iter().map(|u| (Kind::of(&u.path), u.path.clone())).collect();
        let mut made = 0;
        // Connections start at different places in the list, so the mix is even at any instant.
        let mut next = i % urls.len();
        while Instant::now() < clock.window_end && made < config.max_requests {
            let (kind, path) = &urls[next];
            next = (next + 1) % urls.len();
            made += 1;
            let started = Instant::now();
            match conn.get(path).await {
                Ok(reply) if clock.in_window(reply.done_at) => {
                    log.requests[*kind as usize] += 1;
                    log.bytes += reply.body.len() as u64;
                    log.held_ms.push(reply.done_at.duration_since(started).as_secs_f32() * 1000.0);
                }
                Ok(_) => {}
                Err(failure) => {
                    *log.errors.entry(format!("{}:{}", kind.label(), failure.label())).or_default() += 1;
                }
            }
        }
        log
    })
    .await;
    let window_s = config.measure.as_secs_f64();
    let (by_kind, requests, rates, errors) = merge_common(&logs, window_s);
    let mut times: Vec<f64> = logs.iter().flat_map(|log| &log.held_ms).map(|ms| f64::from(*ms)).collect();
    json!({
        "mode": "saturate",
        "connections": config.viewers,
        "gzip": config.gzip,
        "window_s": window_s,
        "requests": requests,
        "requests_per_s": rates["requests_per_s"],
        "mbit_per_s": rates["mbit_per_s"],
        "requests_by_kind": by_kind,
        "errors": errors,
        "unfinished": unfinished,
        "response_ms": percentiles(&mut times, &[("p50", 0.5), ("p99", 0.99)]),
    })
}
