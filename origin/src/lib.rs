//! townhall's origin: serves each room's program over LL-HLS (RFC 8216bis-17) so that a CDN
//! can carry it. Blocking playlist reload (§6.2.5.2), preload hints answered when the part is
//! complete, delta updates (§6.2.5.1), and Cache-Control per the spec's Appendix B: blocking
//! responses cacheable for 6 target durations, plain playlists for half of one, media objects
//! immutable, errors briefly. Every viewer asks for the same URLs, so a CDN collapses them.
//!
//! [`router`] serves `/{room}/{file}`; mount it under `/hls`. Files: `index.m3u8`
//! (multivariant), `live.m3u8` (media, low-latency), `replay.m3u8` (EVENT, then VOD),
//! `init-{id}.mp4`, `seg-{msn}.m4s`, `part-{msn}.{index}.m4s`.

pub mod cdn;
pub mod object_store;
pub mod push;
pub mod rendered;
pub mod replay_index;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use townhall_packager::playlist::Skip;

pub use cdn::{CDN_HEADER, ObjectKind, RequestCounters};
pub use rendered::RenderedPlaylist;
pub use stream::{HlsStream, PlaylistView, RenditionInfo, StreamLimits};

/// The streams the origin serves, by room.
#[derive(Debug, Default)]
pub struct Origin {
    streams: Mutex<HashMap<String, Arc<HlsStream>>>,
    /// Requests that reached the origin, by object kind (`townhall_hls_requests_total`).
    pub requests: RequestCounters,
}

impl Origin {
    pub fn insert(&self, stream: Arc<HlsStream>) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(stream.room.clone(), stream);
    }

    pub fn remove(&self, room: &str) -> Option<Arc<HlsStream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(room)
    }

    pub fn get(&self, room: &str) -> Option<Arc<HlsStream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(room).cloned()
    }
}

/// An origin error, rendered as an RFC 9457 problem.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into() }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        // A 503 says "not yet" and a 403 says "not you": neither may stay in a shared cache.
        let cache = match self.status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::FORBIDDEN => "no-store",
            _ => "public, max-age=1",
        };
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json"), (header::CACHE_CONTROL, cache)],
            body.to_string(),
        )
            .into_response()
    }
}

/// The origin's routes: `/{room}/{file}`. Playlists are gzipped for clients that accept it
/// (`Vary: Accept-Encoding`), once per version ([`rendered`]); media objects are not (they do
/// not shrink). With
/// `required_cdn_secret`, only requests whose [`CDN_HEADER`] carries that secret are served;
/// every other gets 403 `cdn_only` ([`cdn`]).
pub fn router(origin: Arc<Origin>, required_cdn_secret: Option<String>) -> Router {
    let router = Router::new().route("/{room}/{file}", get(serve)).with_state(origin);
    match required_cdn_secret {
        Some(secret) => router.layer(axum::middleware::from_fn_with_state(Arc::<str>::from(secret), cdn::require_cdn)),
        None => router,
    }
}

/// A file name of the origin.
#[derive(Debug, PartialEq, Eq)]
enum File {
    Multivariant,
    Live,
    Replay,
    Init(u32),
    Segment(u64),
    Part(u64, u32),
}

fn parse_file(name: &str) -> Option<File> {
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    Some(match name {
        "index.m3u8" => File::Multivariant,
        "live.m3u8" => File::Live,
        "replay.m3u8" => File::Replay,
        _ => {
            if let Some(id) = name.strip_prefix("init-").and_then(|s| s.strip_suffix(".mp4")) {
                File::Init(u32::try_from(number(id)?).ok()?)
            } else if let Some(msn) = name.strip_prefix("seg-").and_then(|s| s.strip_suffix(".m4s")) {
                File::Segment(number(msn)?)
            } else {
                let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
                let (msn, index) = rest.split_once('.')?;
                File::Part(number(msn)?, u32::try_from(number(index)?).ok()?)
            }
        }
    })
}

/// What a request asks for, for the counters: a live playlist request naming `_HLS_msn` is a
/// blocking one (whether or not its directives turn out valid).
fn object_kind(file: &File, query: Option<&str>) -> ObjectKind {
    match file {
        File::Live if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("_HLS_msn="))) => {
            ObjectKind::BlockingPlaylist
        }
        File::Multivariant | File::Live | File::Replay => ObjectKind::Playlist,
        File::Init(_) => ObjectKind::Init,
        File::Segment(_) => ObjectKind::Segment,
        File::Part(..) => ObjectKind::Part,
    }
}

/// `_HLS_msn`, `_HLS_part`, `_HLS_skip` (§6.2.5).
#[derive(Debug, Default, PartialEq, Eq)]
struct Directives {
    msn: Option<u64>,
    part: Option<u32>,
    skip: Skip,
}

fn parse_directives(query: Option<&str>) -> Result<Directives, Problem> {
    let bad = |detail: String| Problem::new(StatusCode::BAD_REQUEST, "bad_hls_directive", detail);
    let mut d = Directives::default();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                d.msn =
                    Some(value.parse().map_err(|_| bad(format!("_HLS_msn={value:?} is not a media sequence number")))?)
            }
            "_HLS_part" => {
                d.part = Some(value.parse().map_err(|_| bad(format!("_HLS_part={value:?} is not a part index")))?)
            }
            "_HLS_skip" => {
                d.skip = match value {
                    "YES" => Skip::Yes,
                    "v2" => Skip::V2,
                    _ => return Err(bad(format!("_HLS_skip={value:?}: use YES or v2"))),
                }
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {key:?}: only _HLS_msn, _HLS_part and _HLS_skip are understood"
                )));
            }
        }
    }
    if d.part.is_some() && d.msn.is_none() {
        return Err(bad("_HLS_part needs _HLS_msn (RFC 8216bis §6.2.5.2)".into()));
    }
    Ok(d)
}

fn max_age(seconds: u64) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={seconds}")).expect("digits are a valid header")
}

fn media_response(content_type: &'static str, body: Bytes) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, object_store::IMMUTABLE)], body)
        .into_response()
}

/// Waits until `ready()` holds or the stream ends; `false` after `timeout`.
async fn wait_until(stream: &HlsStream, timeout: Duration, mut ready: impl FnMut(&HlsStream) -> bool) -> bool {
    let mut changes = stream.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // "the server MUST hold the request until the Playlist contains ..." (§6.2.5.2)
        if ready(stream) || stream.is_ended() {
            return true;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {}
            _ => return ready(stream),
        }
    }
}

async fn serve(
    State(origin): State<Arc<Origin>>,
    Path((room, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let Some(file) = parse_file(&file) else {
        return Err(Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no HLS file {file:?}")));
    };
    origin.requests.count(object_kind(&file, query.as_deref()));
    let stream = origin
        .get(&room)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_room", format!("no room {room:?}")))?;
    if file != File::Live && query.as_deref().is_some_and(|q| !q.is_empty()) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_hls_directive",
            "only live.m3u8 takes query parameters",
        ));
    }
    let not_live =
        || Problem::new(StatusCode::NOT_FOUND, "not_live", format!("the program of room {room:?} has not started"));
    let td = stream.target_duration();
    let block_limit = Duration::from_secs(3 * td);
    match file {
        File::Multivariant => {
            let Some(info) = stream.rendition().filter(|_| stream.is_started()) else {
                return Err(not_live());
            };
            let body = format!(
                "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
                 #EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{}\nlive.m3u8\n",
                info.bandwidth, info.codecs, info.width, info.height
            );
            Ok(RenderedPlaylist::new(body).response(HeaderValue::from_static("public, max-age=1"), &headers))
        }
        File::Replay => {
            if !stream.is_started() && !stream.has_replay() {
                return Err(not_live());
            }
            let cache = if stream.is_ended() { "public, max-age=3600" } else { "public, max-age=1" };
            Ok(stream.playlist(PlaylistView::Replay).response(HeaderValue::from_static(cache), &headers))
        }
        File::Live => {
            let directives = parse_directives(query.as_deref())?;
            if !stream.is_started() && directives.msn.is_none() {
                return Err(not_live());
            }
            let Some(msn) = directives.msn else {
                let cache = max_age((td / 2).max(1));
                return Ok(stream.playlist(PlaylistView::Live(directives.skip)).response(cache, &headers));
            };
            // §6.2.5.2: more than two segments ahead of the playlist is a bad request.
            let (edge_msn, _) = stream.live_edge().unwrap_or((0, None));
            if !stream.is_ended() && msn > edge_msn + 2 {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad_hls_directive",
                    format!("_HLS_msn={msn} is more than two segments ahead of the playlist (last {edge_msn})"),
                ));
            }
            if directives.part.is_some_and(|p| p > 1000) {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad_hls_directive",
                    "_HLS_part is beyond any segment's parts",
                ));
            }
            if !wait_until(&stream, block_limit, |s| s.live_has(msn, directives.part)).await {
                return Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_yet_available",
                    format!("segment {msn} part {:?} did not arrive within 3 target durations", directives.part),
                ));
            }
            Ok(stream.playlist(PlaylistView::Live(directives.skip)).response(max_age(6 * td), &headers))
        }
        File::Init(id) => {
            if let Some(init) = stream.init(id) {
                return Ok(media_response("video/mp4", init));
            }
            // Init sections of a replay from before a restart are only on disk.
            if let Some(dir) = &stream.replay_dir
                && let Ok(bytes) = tokio::fs::read(dir.join(format!("init-{id}.mp4"))).await
            {
                return Ok(media_response("video/mp4", Bytes::from(bytes)));
            }
            Err(Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no init section {id}")))
        }
        File::Part(msn, index) => {
            if let Some(part) = stream.part(msn, index) {
                return Ok(media_response("video/iso.segment", part));
            }
            // A hinted part (the next one, or a little ahead) is held until complete (§6.2.6).
            let hinted = stream.next_part().is_some_and(|(next_msn, next_index)| {
                (msn == next_msn && index >= next_index && index < next_index + 4) || (msn == next_msn + 1 && index < 4)
            });
            if hinted
                && wait_until(&stream, block_limit, |s| s.part(msn, index).is_some()).await
                && let Some(part) = stream.part(msn, index)
            {
                return Ok(media_response("video/iso.segment", part));
            }
            Err(Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no part {msn}.{index}")))
        }
        File::Segment(msn) => {
            if let Some(segment) = stream.segment(msn) {
                return Ok(media_response("video/iso.segment", segment));
            }
            if let Some(dir) = &stream.replay_dir
                && let Ok(bytes) = tokio::fs::read(dir.join(format!("seg-{msn}.m4s"))).await
            {
                return Ok(media_response("video/iso.segment", Bytes::from(bytes)));
            }
            Err(Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no segment {msn}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_parsed_strictly() {
        assert_eq!(parse_file("index.m3u8"), Some(File::Multivariant));
        assert_eq!(parse_file("part-12.3.m4s"), Some(File::Part(12, 3)));
        assert_eq!(parse_file("seg-7.m4s"), Some(File::Segment(7)));
        assert_eq!(parse_file("init-2.mp4"), Some(File::Init(2)));
        for bad in [
            "..",
            "seg-.m4s",
            "seg--1.m4s",
            "seg-1.m4s.",
            "part-1.m4s",
            "part-1.2.3.m4s",
            "init-99999999999.mp4",
            "seg-99999999999999999999.m4s",
            "../etc/passwd",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn directives_are_validated() {
        assert_eq!(
            parse_directives(Some("_HLS_msn=5&_HLS_part=2&_HLS_skip=YES")).unwrap(),
            Directives { msn: Some(5), part: Some(2), skip: Skip::Yes }
        );
        for bad in [
            "_HLS_part=1",
            "_HLS_msn=x",
            "_HLS_msn=-1",
            "_HLS_skip=maybe",
            "foo=bar",
            "_HLS_msn=99999999999999999999999",
        ] {
            assert!(parse_directives(Some(bad)).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod blocking_tests {
    //! Blocking reload in virtual time: a parked request is answered at the instant the part
    //! it waits for is added (one wake-up, no polling), and gives up after 3 target durations.
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use townhall_packager::segmenter::{Event, PartReady};

    fn stream() -> Arc<HlsStream> {
        let stream = Arc::new(HlsStream::new(
            "room",
            StreamLimits { part_target_s: 0.2, segment_target_s: 2.0, live_window: 6 },
            None,
        ));
        stream.set_rendition(RenditionInfo { codecs: "avc1.42c01f".into(), width: 640, height: 360, bandwidth: 1 });
        stream.apply(&Event::Init { id: 1, data: Bytes::from_static(b"init") });
        stream.apply(&Event::SegmentStarted { msn: 0, program_time_ms: 0, discontinuity: false, init_id: 1 });
        stream
    }

    fn part(index: u32) -> Event {
        Event::Part(PartReady {
            msn: 0,
            index,
            duration_s: 0.2,
            independent: index == 0,
            data: Bytes::from(vec![index as u8; 8]),
        })
    }

    async fn get(origin: &Arc<Origin>, uri: &str) -> (StatusCode, String) {
        let response =
            router(origin.clone(), None).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test(start_paused = true)]
    async fn a_parked_request_returns_the_instant_its_part_is_ready() {
        let origin = Arc::new(Origin::default());
        let stream = stream();
        origin.insert(stream.clone());
        stream.apply(&part(0));
        let waiting = {
            let origin = origin.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let (status, body) = get(&origin, "/room/live.m3u8?_HLS_msn=0&_HLS_part=1").await;
                (status, body, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(180)).await;
        assert!(!waiting.is_finished(), "parked until part 1 exists");
        stream.apply(&part(1));
        let (status, body, elapsed) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("part-0.1.m4s"), "{body}");
        assert_eq!(elapsed, Duration::from_millis(180), "answered when the part came, not later");
        // The hinted part, asked before it exists, is held and then served whole.
        let hinted = {
            let origin = origin.clone();
            tokio::spawn(async move { get(&origin, "/room/part-0.2.m4s").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.apply(&part(2));
        let (status, body) = hinted.await.unwrap();
        assert_eq!((status, body.len()), (StatusCode::OK, 8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_nothing_satisfies_gets_503_after_three_target_durations() {
        let origin = Arc::new(Origin::default());
        origin.insert(stream());
        let started = tokio::time::Instant::now();
        let (status, body) = get(&origin, "/room/live.m3u8?_HLS_msn=1").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(started.elapsed(), Duration::from_secs(6));
        // After the end, blocking requests are answered at once.
        let stream = origin.get("room").unwrap();
        stream.end();
        let (status, body) = get(&origin, "/room/live.m3u8?_HLS_msn=1").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.ends_with("#EXT-X-ENDLIST\n"));
    }
}
