//! The `townhall` binary: command line, start-up (config, data dir, admin token), wiring of
//! the ingest side and the HTTP server. `anyhow` lives here and nowhere else.

mod access;
mod breakouts;
mod config;
mod datetime;
mod http;
mod interaction;
mod lifecycle;
mod presence;
mod program;
mod recordings;
mod registration;
mod reports;
mod retention;
mod rooms;
mod session_owners;
mod tls;
mod tokens;
mod waiting_room;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use townhall_ingest::{IceTimeouts, Ingest, IngestConfig, StageLimits};

use crate::config::Config;
use townhall_origin::object_store::S3Sink;
use townhall_origin::push::PushStatus;

/// townhall: a webinar broadcast server. Presenters publish over WHIP to a low-latency stage,
/// watched over WHEP; the program goes out over LL-HLS.
#[derive(Parser)]
#[command(name = "townhall", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    ///
    /// Every config key can be set in the file, or by an environment variable
    /// TOWNHALL_<SECTION>_<KEY> (e.g. TOWNHALL_WEBRTC_UDP_LISTEN=0.0.0.0:8189); the flags below
    /// override both. TOWNHALL_ADMIN_TOKEN sets the admin token. See config/townhall.toml.
    Serve(ServeArgs),
    /// Print the effective configuration (defaults, file, environment, flags) as TOML.
    Config(ServeArgs),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Config file (TOML); every key is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP listen address [config: server.listen, default 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Data directory [config: server.data_dir, default ./data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// UDP address of the WebRTC media port [config: webrtc.udp_listen, default 0.0.0.0:8189].
    #[arg(long, value_name = "ADDR")]
    udp_listen: Option<SocketAddr>,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.server.data_dir = dir.clone();
        }
        if let Some(udp) = self.udp_listen {
            config.webrtc.udp_listen = udp;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(args) => {
            print!("{}", toml::to_string_pretty(&args.config()?)?);
            Ok(())
        }
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("TOWNHALL_LOG")
                        .unwrap_or_else(|_| "info,rtc=warn,rtc_ice=warn,rtc_dtls=warn".into()),
                )
                .init();
            let config = args.config()?;
            // Media (WebRTC sessions, programs) runs on its own threads: under a flood of
            // viewers, HTTP tasks queue behind each other, not in front of the next part.
            let media =
                tokio::runtime::Builder::new_multi_thread().thread_name("townhall-media").enable_all().build()?;
            let served = tokio::runtime::Builder::new_multi_thread()
                .thread_name("townhall-http")
                .enable_all()
                .build()?
                .block_on(serve(config, media.handle().clone()));
            media.shutdown_background();
            served
        }
    }
}

/// The admin token: configured, else the one stored in the data dir, else a new one.
fn admin_token(config: &Config) -> anyhow::Result<String> {
    if !config.server.admin_token.is_empty() {
        return Ok(config.server.admin_token.clone());
    }
    let path = config.server.data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => {
            let token = rooms::random_token(32);
            rooms::write_atomically(&path, token.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(path = %path.display(), %token, "no admin token configured: generated one and stored it");
            Ok(token)
        }
    }
}

async fn serve(config: Config, media: tokio::runtime::Handle) -> anyhow::Result<()> {
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let probe = data_dir.join(".write-test");
    std::fs::write(&probe, b"ok")
        .with_context(|| format!("the data directory {} is not writable", data_dir.display()))?;
    let _ = std::fs::remove_file(probe);

    let admin_token = admin_token(&config)?;
    let limits = StageLimits {
        max_presenters: config.stage.max_presenters,
        subscriber_queue_packets: config.stage.subscriber_queue_packets,
        frame_bus_capacity: config.stage.frame_bus_capacity,
    };
    let h = &config.hls;
    let hls_limits = townhall_origin::StreamLimits {
        part_target_s: f64::from(h.part_target_ms) / 1000.0,
        segment_target_s: f64::from(h.segment_target_ms) / 1000.0,
        live_window: h.live_window_segments,
    };
    let program_settings = program::ProgramSettings {
        part_target_ms: h.part_target_ms,
        segment_target_ms: h.segment_target_ms,
        aac_bitrate: h.aac_bitrate,
        sender_report_wait: Duration::from_millis(h.sender_report_wait_ms),
    };
    let rooms = rooms::Rooms::open(data_dir, limits, hls_limits)?;
    let w = &config.webrtc;
    let ingest = media
        .spawn(Ingest::start(IngestConfig {
            udp_listen: w.udp_listen,
            public_ips: w.public_ips.clone(),
            ice: IceTimeouts {
                disconnected: Duration::from_millis(w.ice_disconnected_timeout_ms),
                failed: Duration::from_millis(w.ice_failed_timeout_ms),
                keepalive: Duration::from_millis(w.ice_keepalive_interval_ms),
            },
            keyframe_min_interval: Duration::from_millis(w.keyframe_min_interval_ms),
            session_queue_datagrams: w.session_queue_datagrams,
        }))
        .await?
        .with_context(|| format!("cannot open the WebRTC UDP port {}", w.udp_listen))?;

    if !config.server.tls_cert.is_empty() {
        // Fail before anything listens if the certificate cannot be used.
        tls::server_config(config.server.tls_cert.as_ref(), config.server.tls_key.as_ref())?;
    }
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let http_addr = listener.local_addr()?;
    let s3 = if config.s3.enabled() {
        let sink = Arc::new(S3Sink::new(&config.s3));
        let status = Arc::new(PushStatus::default());
        // A bucket that cannot be reached is not fatal (segments wait on disk), but the
        // operator must hear of it now, not when the replay is missing.
        match sink.check().await {
            Ok(()) => tracing::info!(bucket = %sink.describe(), "replays are pushed to S3"),
            Err(err) => {
                tracing::error!(bucket = %sink.describe(), %err, "S3 is not usable: replays wait on disk until it is");
                status.set_error(Some(err.to_string()));
            }
        }
        Some((sink, status))
    } else {
        None
    };
    let ws = &config.websocket;
    let delivery = interaction::DeliverySettings {
        queue_events: ws.queue_events,
        send_timeout: Duration::from_millis(ws.send_timeout_ms),
        max_message_bytes: ws.max_message_bytes,
        results_interval: Duration::from_millis(ws.results_interval_ms),
    };
    let access = Arc::new(access::Access::open(data_dir, config.server.token_max_ttl_s)?);
    let interaction = interaction::Interaction::open(data_dir, config.interaction.clone(), delivery, access.clone())?;
    let webhooks = webhooks::Webhooks::open(data_dir, &config.webhooks)
        .with_context(|| format!("cannot open the webhook spool in {}", data_dir.display()))?;
    webhooks.start(&config.webhooks).map_err(|err| anyhow::anyhow!("webhooks: {err}"))?;
    let registrations = registration::store::Registrations::open(data_dir)
        .with_context(|| format!("cannot open the registrations in {}", data_dir.display()))?;
    let reports = reports::Reports::open(data_dir, config.reports.heartbeat_interval_s, reports::unix_now_ms())
        .with_context(|| format!("cannot open the attendance store in {}", data_dir.display()))?;
    let state = Arc::new(http::AppState {
        config,
        admin_token,
        rooms,
        ingest: ingest.clone(),
        http: http::HttpMetrics::default(),
        origin: Arc::default(),
        program_settings,
        programs: Default::default(),
        s3,
        pushers: Default::default(),
        media,
        interaction,
        access,
        webhooks: Arc::new(webhooks),
        presence: Default::default(),
        registrations,
        reports: Arc::new(reports),
        breakouts: Default::default(),
        session_owners: Default::default(),
    });
    for room in state.rooms.list() {
        let resume = if state.config.hls.enabled { program::restore_replay(&room.hls).await } else { None };
        // The interaction log's date ranges go back into the replay before anyone asks.
        if let Err(err) = state.interaction.hub(&room.record.id, &room.hls) {
            tracing::error!(room = %room.record.id, %err, "the room's interaction log could not be restored");
        }
        // A room that never went live has no program yet; going live starts it.
        if room.phase().broadcasts() {
            state.start_program(&room, resume);
        }
    }
    let retention_days = state.config.hls.replay_retention_days;
    if retention_days > 0 && state.config.hls.enabled {
        tokio::spawn(retention::run(state.clone(), retention_days));
    }
    // Tests and scripts wait for this line.
    tracing::info!(http = %http_addr, udp = %ingest.udp_addr(), "townhall listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let tls = &state.config.server;
    if tls.tls_cert.is_empty() {
        axum::serve(listener, http::router(state.clone())).with_graceful_shutdown(shutdown).await?;
    } else {
        let tls_config = tls::server_config(tls.tls_cert.as_ref(), tls.tls_key.as_ref())?;
        tls::serve(listener, tls_config, http::router(state.clone()), shutdown).await?;
    }
    Ok(())
}
