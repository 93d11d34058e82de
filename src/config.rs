//! townhall's configuration: one struct that is the config file (TOML, unknown keys refused),
//! overridable by environment variables and by command-line flags, validated at start-up.
//!
//! Precedence, lowest first: built-in defaults, the file given with `--config`, environment
//! variables `TOWNHALL_<SECTION>_<KEY>` (e.g. `TOWNHALL_SERVER_LISTEN=0.0.0.0:8080`,
//! `TOWNHALL_WEBRTC_PUBLIC_IPS=203.0.113.7,2001:db8::7`), then flags. `TOWNHALL_ADMIN_TOKEN`
//! is accepted as a short form of `TOWNHALL_SERVER_ADMIN_TOKEN`. Every key is documented here
//! and, with its default, in `config/townhall.toml`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use townhall_interaction::InteractionConfig;
use townhall_origin::object_store::S3Settings;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub webrtc: WebRtcConfig,
    pub stage: StageConfig,
    pub hls: HlsConfig,
    /// `[s3]`: see [`S3Settings`] (defined beside the S3 sink).
    pub s3: S3Settings,
    /// `[interaction]`: limits of chat, Q&A and polls, see [`InteractionConfig`] (defined
    /// beside the state machines).
    pub interaction: InteractionConfig,
    pub websocket: WebSocketConfig,
    pub webhooks: WebhooksConfig,
    pub reports: ReportsConfig,
}

/// `[reports]`: attendance and engagement reports (`GET /api/rooms/{room}/report`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// Seconds between two heartbeats of a watch page (told to clients in `welcome`); each
    /// playing heartbeat credits this many seconds of watch time (1 to 3600). Default 15.
    pub heartbeat_interval_s: u64,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self { heartbeat_interval_s: 15 }
    }
}

/// `[webhooks]`: signed HTTP callbacks for what happens in rooms (Standard Webhooks), see
/// `src/webhooks/` and docs/API.md.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Endpoints every event is POSTed to (`http://` or `https://`), each with its own ordered
    /// queue. Empty (the default): webhooks are off.
    pub urls: Vec<String>,
    /// The signing secret (HMAC-SHA256); required when `urls` is set. `whsec_<base64>` is
    /// decoded as the Standard Webhooks libraries expect; any other value is used as is.
    pub secret: String,
    /// Milliseconds one delivery attempt may take (connect, send, response head). Default 5000.
    pub timeout_ms: u64,
    /// Attempts of one event before it is given up (dropped and counted). Default 10.
    pub max_attempts: u32,
    /// Milliseconds before the first retry; each further one waits twice as long (plus a
    /// jitter of up to 25 %). Default 1000.
    pub backoff_initial_ms: u64,
    /// Longest wait between two attempts, in milliseconds. Default 300000 (5 minutes).
    pub backoff_max_ms: u64,
    /// Undelivered events kept per endpoint (on disk, in `<data_dir>/webhooks/`); beyond it the
    /// oldest is dropped and counted. Default 10000.
    pub queue_max: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: String::new(),
            timeout_ms: 5_000,
            max_attempts: 10,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            queue_max: 10_000,
        }
    }
}

/// `[websocket]`: delivery of interaction events on `/ws/{room}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Events a client may have waiting: one that falls further behind gets `resync` and is
    /// disconnected (it reconnects with `since`), so that nobody waits for it. Default 1024.
    pub queue_events: usize,
    /// Milliseconds one send to a client may take before the client is cut off. Default 10000.
    pub send_timeout_ms: u64,
    /// Largest message a client may send, in bytes. Default 16384.
    pub max_message_bytes: usize,
    /// Least milliseconds between two `poll_results` of a poll while votes come in. Default 500.
    pub results_interval_ms: u64,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self { queue_events: 1_024, send_timeout_ms: 10_000, max_message_bytes: 16_384, results_interval_ms: 500 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Whether rooms have an LL-HLS program at all. `false`: a stage-only server (WHIP/WHEP).
    pub enabled: bool,
    /// PART-TARGET of the LL-HLS parts in milliseconds. Parts last 85-100 % of it at any frame
    /// rate: where whole frames do not fit, the video is retimed by at most 40 ms.
    pub part_target_ms: u32,
    /// Wanted segment length in milliseconds; the presenter is asked for a keyframe (PLI) when
    /// a segment is due.
    pub segment_target_ms: u32,
    /// Complete segments kept in the live playlist (and in memory).
    pub live_window_segments: usize,
    /// Bit rate of the program's AAC-LC audio (transcoded from the presenter's Opus).
    pub aac_bitrate: u32,
    /// Milliseconds to wait for the presenter's first RTCP Sender Report (to align audio and
    /// video) before starting the program without it.
    pub sender_report_wait_ms: u64,
    /// Shared secret that identifies the CDN: the edge sends it in the `X-Townhall-CDN`
    /// request header (`proxy_set_header` in `config/nginx-edge.conf`, `bereq.http` in
    /// `config/varnish-edge.vcl`). Printable ASCII without spaces. Empty (the default): off.
    /// It is only checked when `require_cdn` is true.
    pub cdn_secret: String,
    /// Serve `/hls/…` only to the CDN: requests without `X-Townhall-CDN: <cdn_secret>` get
    /// 403 `cdn_only`, so viewers cannot bypass the cache. Pages, the API, WHIP/WHEP,
    /// `/healthz` and `/metrics` are not affected. Needs `cdn_secret`. Default false.
    pub require_cdn: bool,
    /// Days a replay is kept after its last segment, on disk and in the bucket, with its
    /// recordings; then it is removed whole (the room stays). 0 (the default): for ever.
    pub replay_retention_days: u32,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            part_target_ms: 200,
            segment_target_ms: 2_000,
            live_window_segments: 10,
            aac_bitrate: 128_000,
            sender_report_wait_ms: 3_000,
            cdn_secret: String::new(),
            require_cdn: false,
            replay_retention_days: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address (API, WHIP/WHEP signalling, pages, metrics).
    pub listen: SocketAddr,
    /// Directory for state that outlives the process (rooms, generated admin token).
    pub data_dir: PathBuf,
    /// Bearer token for the admin API. Empty: one is generated at first start, stored in
    /// `<data_dir>/admin_token` and logged.
    pub admin_token: String,
    /// Base URL written into the URLs the API returns (`whip_url`, ...), e.g.
    /// `https://webinar.example.com`. Empty: taken from each request's Host header.
    pub public_url: String,
    /// Largest request body accepted (SDP offers, JSON), in bytes. Larger: 413.
    pub max_body_bytes: usize,
    /// Value of `Access-Control-Allow-Origin` on every response.
    pub cors_allow_origin: String,
    /// PEM certificate chain for HTTPS (HTTP/2 and HTTP/1.1 by ALPN). Empty: cleartext HTTP/1.1
    /// and HTTP/2 with prior knowledge (h2c).
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// Longest lifetime of a signed token, in seconds (`POST /api/rooms/{room}/tokens` may ask
    /// for less); attendees who join without a token get one this long. Default 2592000 (30 days).
    pub token_max_ttl_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// The one UDP address every WebRTC session uses (open this port in the firewall).
    pub udp_listen: SocketAddr,
    /// Addresses to advertise as ICE host candidates (a public IP behind 1:1 NAT, say).
    /// Empty: the bound address, or every local interface when bound to 0.0.0.0 / [::].
    pub public_ips: Vec<IpAddr>,
    /// STUN/TURN servers offered to clients in `Link: rel="ice-server"` headers (RFC 9725 §4.6).
    pub ice_servers: Vec<IceServer>,
    /// Milliseconds without traffic before a session counts as disconnected.
    pub ice_disconnected_timeout_ms: u64,
    /// Milliseconds disconnected before a session fails and is closed.
    pub ice_failed_timeout_ms: u64,
    /// Milliseconds between ICE keepalive checks.
    pub ice_keepalive_interval_ms: u64,
    /// Least milliseconds between two keyframe requests (PLI) sent to one publisher.
    pub keyframe_min_interval_ms: u64,
    /// Datagrams one session may have queued before further ones are dropped (counted).
    pub session_queue_datagrams: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub credential: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StageConfig {
    /// Presenters that may publish at once in one room.
    pub max_presenters: usize,
    /// RTP packets a WHEP subscriber may fall behind before it loses the oldest (counted).
    pub subscriber_queue_packets: usize,
    /// Frames the packager may fall behind on a room's frame bus.
    pub frame_bus_capacity: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid default"),
            data_dir: PathBuf::from("data"),
            admin_token: String::new(),
            public_url: String::new(),
            max_body_bytes: 64 * 1024,
            cors_allow_origin: "*".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            token_max_ttl_s: 2_592_000,
        }
    }
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            udp_listen: "0.0.0.0:8189".parse().expect("valid default"),
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            ice_disconnected_timeout_ms: 4_000,
            ice_failed_timeout_ms: 25_000,
            ice_keepalive_interval_ms: 2_000,
            keyframe_min_interval_ms: 500,
            session_queue_datagrams: 1_024,
        }
    }
}

impl Default for StageConfig {
    fn default() -> Self {
        Self { max_presenters: 8, subscriber_queue_packets: 2_048, frame_bus_capacity: 1_024 }
    }
}

impl Config {
    /// Defaults, then the file, then `TOWNHALL_*` variables from `env`.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut value = toml::Value::try_from(Config::default()).context("serializing defaults")?;
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
            let from_file: Config =
                toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))?;
            value = toml::Value::try_from(from_file)?;
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        let aws = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (aws_key, aws_secret) = (aws("AWS_ACCESS_KEY_ID"), aws("AWS_SECRET_ACCESS_KEY"));
        let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("TOWNHALL_")).collect();
        apply_env(&mut value, &env)?;
        let mut config: Config = value.try_into().context("applying TOWNHALL_* environment variables")?;
        // S3 credentials: the AWS SDKs' usual variables when the config has none.
        if config.s3.access_key_id.is_empty() && config.s3.secret_access_key.is_empty() {
            config.s3.access_key_id = aws_key.unwrap_or_default();
            config.s3.secret_access_key = aws_secret.unwrap_or_default();
        }
        Ok(config)
    }

    /// Refuses settings that cannot work, with a message naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes must be at least 1024 (an SDP offer is ~5 KB)");
        }
        if !self.server.public_url.is_empty() && !self.server.public_url.starts_with("http") {
            bail!("server.public_url must start with http:// or https:// (got {:?})", self.server.public_url);
        }
        if self.server.tls_cert.is_empty() != self.server.tls_key.is_empty() {
            bail!("server.tls_cert and server.tls_key go together: set both or neither");
        }
        if self.stage.max_presenters == 0 {
            bail!("stage.max_presenters must be at least 1");
        }
        if self.stage.subscriber_queue_packets < 64 {
            bail!("stage.subscriber_queue_packets must be at least 64");
        }
        if !(100..=2_000).contains(&self.hls.part_target_ms) {
            bail!("hls.part_target_ms must be between 100 and 2000");
        }
        if self.hls.segment_target_ms < 2 * self.hls.part_target_ms || self.hls.segment_target_ms > 10_000 {
            bail!("hls.segment_target_ms must be at least twice hls.part_target_ms and at most 10000");
        }
        if self.hls.live_window_segments < 3 {
            bail!("hls.live_window_segments must be at least 3");
        }
        if !(32_000..=320_000).contains(&self.hls.aac_bitrate) {
            bail!("hls.aac_bitrate must be between 32000 and 320000");
        }
        if !self.hls.cdn_secret.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("hls.cdn_secret must be printable ASCII without spaces: it travels in an HTTP header");
        }
        if self.hls.require_cdn && self.hls.cdn_secret.is_empty() {
            bail!("hls.require_cdn = true needs hls.cdn_secret: set the secret the CDN edge sends in X-Townhall-CDN");
        }
        if self.s3.enabled() {
            if !(self.s3.endpoint.starts_with("http://") || self.s3.endpoint.starts_with("https://")) {
                bail!("s3.endpoint must start with http:// or https:// (got {:?})", self.s3.endpoint);
            }
            if self.s3.bucket.is_empty() {
                bail!("s3.bucket is required when s3.endpoint is set");
            }
            if self.s3.access_key_id.is_empty() || self.s3.secret_access_key.is_empty() {
                bail!(
                    "s3.access_key_id and s3.secret_access_key are required when s3.endpoint is set \
                     (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                );
            }
            if !self.s3.prefix.is_empty() && !self.s3.prefix.ends_with('/') {
                bail!("s3.prefix must end with '/' (got {:?})", self.s3.prefix);
            }
        }
        if self.hls.replay_retention_days > 36_500 {
            bail!("hls.replay_retention_days must be at most 36500 (0 keeps replays for ever)");
        }
        if !(60..=315_360_000).contains(&self.server.token_max_ttl_s) {
            bail!("server.token_max_ttl_s must be between 60 and 315360000 (ten years)");
        }
        let ws = &self.websocket;
        if !(16..=1_000_000).contains(&ws.queue_events) {
            bail!("websocket.queue_events must be between 16 and 1000000");
        }
        if !(1_024..=1_048_576).contains(&ws.max_message_bytes) {
            bail!("websocket.max_message_bytes must be between 1024 and 1048576");
        }
        if ws.send_timeout_ms < 100 || ws.results_interval_ms < 50 {
            bail!("websocket.send_timeout_ms must be at least 100 and websocket.results_interval_ms at least 50");
        }
        let i = &self.interaction;
        if i.chat_max_chars == 0
            || i.question_max_chars == 0
            || i.poll_question_max_chars == 0
            || i.poll_option_max_chars == 0
        {
            bail!("interaction.*_max_chars must be at least 1");
        }
        if i.chat_rate.burst == 0 || i.question_rate.burst == 0 {
            bail!("interaction.chat_rate.burst and interaction.question_rate.burst must be at least 1");
        }
        if !(1..=3_600).contains(&self.reports.heartbeat_interval_s) {
            bail!("reports.heartbeat_interval_s must be between 1 and 3600");
        }
        if self.webrtc.ice_failed_timeout_ms == 0 || self.webrtc.ice_disconnected_timeout_ms == 0 {
            bail!("webrtc.ice_*_timeout_ms must be positive");
        }
        for server in &self.webrtc.ice_servers {
            for url in &server.urls {
                if !(url.starts_with("stun:") || url.starts_with("turn:") || url.starts_with("turns:")) {
                    bail!("webrtc.ice_servers: {url:?} is not a stun:, turn: or turns: URL");
                }
            }
        }
        self.validate_webhooks()
    }

    fn validate_webhooks(&self) -> anyhow::Result<()> {
        let w = &self.webhooks;
        if w.urls.is_empty() {
            return Ok(());
        }
        for url in &w.urls {
            let parsed: Option<axum::http::Uri> = url.parse().ok();
            let usable = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
            });
            if !usable {
                bail!("webhooks.urls: {url:?} is not an http:// or https:// URL with a host");
            }
        }
        if w.secret.is_empty() {
            bail!("webhooks.secret is required when webhooks.urls is set: receivers verify the signature with it");
        }
        if let Err(err) = crate::webhooks::signing_key(&w.secret) {
            bail!("webhooks.secret is not usable: {err}");
        }
        if w.timeout_ms < 100 || w.max_attempts == 0 || w.queue_max == 0 {
            bail!("webhooks.timeout_ms must be at least 100, webhooks.max_attempts and webhooks.queue_max at least 1");
        }
        if w.backoff_initial_ms < 10 || w.backoff_max_ms < w.backoff_initial_ms {
            bail!("webhooks.backoff_initial_ms must be at least 10 and at most webhooks.backoff_max_ms");
        }
        Ok(())
    }
}

/// Applies `TOWNHALL_<SECTION>_<KEY>` overrides onto the config table, parsing each value
/// as the type the key already has.
fn apply_env(value: &mut toml::Value, env: &[(String, String)]) -> anyhow::Result<()> {
    let table = value.as_table_mut().context("config is a table")?;
    for (name, raw) in env {
        let name = if name == "TOWNHALL_ADMIN_TOKEN" { "TOWNHALL_SERVER_ADMIN_TOKEN" } else { name.as_str() };
        let mut matched = false;
        for (section, section_value) in table.iter_mut() {
            let Some(section_table) = section_value.as_table_mut() else {
                continue;
            };
            for (key, key_value) in section_table.iter_mut() {
                let var = format!("TOWNHALL_{}_{}", section.to_uppercase(), key.to_uppercase());
                if var != name {
                    continue;
                }
                matched = true;
                *key_value = parse_env_value(key_value, raw).with_context(|| format!("environment variable {name}"))?;
            }
        }
        if !matched && name != "TOWNHALL_LOG" {
            tracing::warn!(variable = name, "unknown TOWNHALL_ environment variable ignored");
        }
    }
    Ok(())
}

fn parse_env_value(current: &toml::Value, raw: &str) -> anyhow::Result<toml::Value> {
    Ok(match current {
        toml::Value::String(_) => toml::Value::String(raw.to_owned()),
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().with_context(|| format!("{raw:?} is not an integer"))?)
        }
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(raw.trim().parse().with_context(|| format!("{raw:?} is not true/false"))?)
        }
        toml::Value::Array(_) if raw.trim_start().starts_with('[') => {
            let doc: toml::Table =
                toml::from_str(&format!("v = {raw}")).with_context(|| format!("{raw:?} is not a TOML array"))?;
            doc["v"].clone()
        }
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        other => bail!("cannot set a {} from the environment", other.type_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_is_the_defaults() {
        let shipped: Config = toml::from_str(include_str!("../config/townhall.toml")).unwrap();
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn environment_overrides_keys_by_type() {
        let env = [
            ("TOWNHALL_SERVER_LISTEN", "0.0.0.0:9000"),
            ("TOWNHALL_ADMIN_TOKEN", "s3cret"),
            ("TOWNHALL_WEBRTC_PUBLIC_IPS", "203.0.113.7, 2001:db8::7"),
            ("TOWNHALL_STAGE_MAX_PRESENTERS", "3"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.server.admin_token, "s3cret");
        assert_eq!(c.webrtc.public_ips.len(), 2);
        assert_eq!(c.stage.max_presenters, 3);
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_name() {
        let env = [("TOWNHALL_STAGE_MAX_PRESENTERS".to_owned(), "many".to_owned())];
        let err = format!("{:#}", Config::load(None, env).unwrap_err());
        assert!(err.contains("TOWNHALL_STAGE_MAX_PRESENTERS"), "{err}");
        let mut c = Config::default();
        c.stage.max_presenters = 0;
        assert!(c.validate().unwrap_err().to_string().contains("stage.max_presenters"));
    }

    #[test]
    fn requiring_the_cdn_needs_a_usable_secret() {
        let env = [("TOWNHALL_HLS_REQUIRE_CDN", "true")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, env).unwrap();
        assert!(c.hls.require_cdn);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("hls.require_cdn") && err.contains("hls.cdn_secret"), "{err}");
        let env = [("TOWNHALL_HLS_REQUIRE_CDN", "true"), ("TOWNHALL_HLS_CDN_SECRET", "edge secret")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let err = Config::load(None, env).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("hls.cdn_secret"), "{err}");
        let env = [("TOWNHALL_HLS_REQUIRE_CDN", "true"), ("TOWNHALL_HLS_CDN_SECRET", "edge-secret-1234")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, env).unwrap();
        c.validate().unwrap();
        assert_eq!(c.hls.cdn_secret, "edge-secret-1234");
    }

    #[test]
    fn webhooks_need_a_secret_and_http_urls() {
        let load = |vars: &[(&str, &str)]| {
            let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            Config::load(None, env).unwrap().validate()
        };
        let err = load(&[("TOWNHALL_WEBHOOKS_URLS", "http://127.0.0.1:9/hook")]).unwrap_err().to_string();
        assert!(err.contains("webhooks.secret"), "{err}");
        let err = load(&[("TOWNHALL_WEBHOOKS_URLS", "ftp://crm.example/x"), ("TOWNHALL_WEBHOOKS_SECRET", "s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("webhooks.urls") && err.contains("ftp://"), "{err}");
        load(&[
            ("TOWNHALL_WEBHOOKS_URLS", "http://127.0.0.1:9/hook, https://crm.example/in"),
            ("TOWNHALL_WEBHOOKS_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ])
        .unwrap();
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Config>("[server]\nlisten_on = \"x\"\n").is_err());
    }
}
