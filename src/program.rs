//! The program of one room, from the stage's frame bus to the origin: follows the presenter on
//! the program, maps frames onto the program timeline, transcodes Opus to AAC, cuts CMAF parts
//! and segments, writes segments to the replay directory, and hands everything to the room's
//! `HlsStream`. This file is the async shell; the decisions live in the packager's sans-IO
//! cores (`timeline`, `segmenter`, `aac`).
//!
//! Decided here:
//! - The program starts once the presenter's video has a Sender Report (so audio and video can
//!   be aligned), or after `hls.sender_report_wait_ms` without one.
//! - The program has an audio track if the presenter sent audio before its first keyframe.
//! - A switch of presenter, a reconnection (a jump of more than 5 s in RTP time) or frames lost
//!   on the bus start a new epoch: EXT-X-DISCONTINUITY, a new init section if the parameters
//!   differ, and a keyframe request to the presenter.
//! - Durability: a segment is written to the replay directory (temp file + rename), then listed
//!   in its index (`replay.jsonl`), then in the replay playlist, which is also written there. At
//!   start the replay is rebuilt from the index and the program continues after its last
//!   segment (a discontinuity; no number reused); an event that had ended stays ended.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use townhall_ingest::{Stage, StageFrame};
use townhall_origin::object_store::{DiskSink, IMMUTABLE, ObjectSink};
use townhall_origin::replay_index::{ReplayEntry, ReplayIndex};
use townhall_origin::stream::Resume;
use townhall_origin::{HlsStream, PlaylistView, RenditionInfo};
use townhall_packager::aac::{AAC_FRAME_SAMPLES, OpusToAac};
use townhall_packager::fmp4::{SampleEntry, aac_lc_audio_specific_config};
use townhall_packager::segmenter::{Event, ProgramTracks, Segmenter, SegmenterConfig, TimedSample};
use townhall_packager::sps::parse_sps;
use townhall_packager::timeline::ProgramTimeline;
use townhall_packager::{Codec, TrackKind};

/// Settings of every room's program (from the `[hls]` config section).
#[derive(Debug, Clone, Copy)]
pub struct ProgramSettings {
    pub part_target_ms: u32,
    pub segment_target_ms: u32,
    pub aac_bitrate: u32,
    pub sender_report_wait: Duration,
}

/// Longest silence put before an epoch's first audio to start it with its keyframe.
const MAX_LEAD_IN_MS: i64 = 250;

/// RTP time jumps larger than this (90 kHz) mean a new session: a new epoch.
const EPOCH_JUMP_TICKS: u64 = 5 * 90_000;

struct Program {
    stage: Arc<Stage>,
    stream: Arc<HlsStream>,
    settings: ProgramSettings,
    /// Called at the run's first segment, then `None`.
    started: Option<Box<dyn FnOnce() + Send>>,
    /// The durable list of the replay's segments.
    index: ReplayIndex,
    /// The replay directory as a store (atomic writes).
    disk: DiskSink,
    presenter: Option<String>,
    segmenter: Segmenter,
    timeline: ProgramTimeline,
    transcoder: Option<OpusToAac>,
    /// Capture time of the first Opus sample fed to the transcoder of this epoch.
    first_opus_capture_ms: i64,
    audio_seen: bool,
    waiting_since: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    last_video_pts: Option<u64>,
    segment_bytes: u64,
}

/// Rebuilds a room's replay from its index on disk (at start-up, before the server listens,
/// so no viewer sees the replay missing); returns where its program continues.
pub async fn restore_replay(stream: &HlsStream) -> Option<Resume> {
    let dir = stream.replay_dir.clone()?;
    let index = ReplayIndex::new(&dir);
    let entries = tokio::task::spawn_blocking(move || index.read()).await.map_err(std::io::Error::other);
    let entries = entries.and_then(|r| r).unwrap_or_else(|err| {
        tracing::error!(room = %stream.room, dir = %dir.display(), %err, "replay index unreadable: the replay starts anew");
        Vec::new()
    });
    let resume = stream.restore(&entries);
    if let Some(resume) = resume {
        tracing::info!(room = %stream.room, next_msn = resume.next_msn, ended = resume.ended, "replay restored");
    }
    resume
}

/// Runs a room's program until `stop` is notified (the event ended) or the stage's frame bus
/// closes; then the last segment is closed and both playlists end. `resume`: where an earlier
/// run of the program stopped ([`restore_replay`]); an ended event runs no program. `started`
/// is called once, when the run's first segment is in the replay (`room.started`).
pub async fn run(
    stage: Arc<Stage>,
    stream: Arc<HlsStream>,
    settings: ProgramSettings,
    replay_dir: PathBuf,
    resume: Option<Resume>,
    stop: Arc<tokio::sync::Notify>,
    started: Box<dyn FnOnce() + Send>,
) {
    if resume.is_some_and(|r| r.ended) {
        return;
    }
    if let Err(err) = tokio::fs::create_dir_all(&replay_dir).await {
        tracing::error!(room = %stage.room, dir = %replay_dir.display(), %err, "cannot create the replay directory");
    }
    let index = ReplayIndex::new(&replay_dir);
    let disk = DiskSink::new(&replay_dir);
    let mut frames = stage.subscribe_frames();
    let mut program_changes = stage.watch_program();
    let config =
        SegmenterConfig { part_target_ms: settings.part_target_ms, segment_target_ms: settings.segment_target_ms };
    let segmenter = match resume {
        Some(resume) => Segmenter::resume(config, resume.next_msn, resume.last_init_id),
        None => Segmenter::new(config, 0),
    };
    let mut program = Program {
        presenter: program_changes.borrow().as_ref().map(|f| f.presenter.clone()),
        stage,
        stream,
        settings,
        started: Some(started),
        index,
        disk,
        segmenter,
        timeline: ProgramTimeline::new(),
        transcoder: None,
        first_opus_capture_ms: 0,
        audio_seen: false,
        waiting_since: None,
        last_keyframe_request: None,
        last_video_pts: None,
        segment_bytes: 0,
    };
    let mut event_ended = false;
    loop {
        tokio::select! {
            _ = stop.notified() => {
                event_ended = true;
                break;
            }
            changed = program_changes.changed() => {
                if changed.is_err() {
                    break;
                }
                let presenter = program_changes.borrow_and_update().as_ref().map(|f| f.presenter.clone());
                if presenter != program.presenter {
                    tracing::info!(room = %program.stage.room, from = ?program.presenter, to = ?presenter, "program switch");
                    program.presenter = presenter;
                    program.new_epoch();
                }
            }
            frame = frames.recv() => match frame {
                Ok(frame) => {
                    // Timed metadata (interaction events) rides in the next parts as emsg.
                    for metadata in program.stream.take_metadata() {
                        program.segmenter.push_metadata(metadata);
                    }
                    program.on_frame(frame)
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(room = %program.stage.room, frames = n, "program fell behind the frame bus");
                    program.new_epoch();
                }
                Err(RecvError::Closed) => break,
            },
        }
        program.drain().await;
    }
    for metadata in program.stream.take_metadata() {
        program.segmenter.push_metadata(metadata);
    }
    program.segmenter.finish();
    program.drain().await;
    program.stream.end();
    if event_ended {
        // The replay stays VOD across restarts.
        program.record(ReplayEntry::Ended).await;
        program.stream.notify_replay_written();
        program.write_replay_playlist().await;
    }
}

impl Program {
    fn request_keyframe(&self) {
        if let Some(feed) = self.presenter.as_deref().and_then(|p| self.stage.feed(p)) {
            feed.request_keyframe();
        }
    }

    fn new_epoch(&mut self) {
        self.timeline.new_epoch();
        self.segmenter.discontinuity();
        self.transcoder = None;
        self.audio_seen = false;
        self.waiting_since = None;
        self.last_video_pts = None;
        self.request_keyframe();
    }

    fn on_frame(&mut self, stage_frame: StageFrame) {
        if self.presenter.as_deref() != Some(stage_frame.presenter.as_str()) {
            return;
        }
        let StageFrame { track, frame, .. } = stage_frame;
        match track.kind {
            TrackKind::Video => {
                let Codec::H264 { sps, pps } = &track.codec else {
                    return;
                };
                if let Some(last) = self.last_video_pts
                    && frame.pts.abs_diff(last) > EPOCH_JUMP_TICKS
                {
                    tracing::info!(room = %self.stage.room, "presenter's RTP time jumped: new epoch");
                    self.new_epoch();
                }
                if !self.timeline.is_anchored() {
                    let waited = self.waiting_since.get_or_insert_with(Instant::now).elapsed();
                    let synced = frame.wall_clock_synced || waited >= self.settings.sender_report_wait;
                    if !frame.keyframe || !synced {
                        // WebRTC encoders send keyframes only when asked: ask, once a second.
                        if self.last_keyframe_request.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                            self.last_keyframe_request = Some(Instant::now());
                            self.request_keyframe();
                        }
                        return;
                    }
                    let Some(info) = parse_sps(sps) else {
                        tracing::warn!(room = %self.stage.room, "unreadable SPS: waiting for the next keyframe");
                        return;
                    };
                    let audio = self.audio_seen.then(|| {
                        (
                            SampleEntry::Aac {
                                sample_rate: 48_000,
                                channels: 2,
                                audio_specific_config: aac_lc_audio_specific_config(48_000, 2),
                                bitrate: self.settings.aac_bitrate,
                            },
                            48_000,
                        )
                    });
                    let codecs = if audio.is_some() {
                        format!("{},mp4a.40.2", track.codec.rfc6381())
                    } else {
                        track.codec.rfc6381()
                    };
                    self.segmenter.set_tracks(ProgramTracks {
                        video: SampleEntry::Avc {
                            sps: sps.clone(),
                            pps: pps.clone(),
                            width: info.width as u16,
                            height: info.height as u16,
                        },
                        audio,
                    });
                    let bandwidth = self.stream.rendition().map(|r| r.bandwidth).unwrap_or(2_500_000);
                    self.stream.set_rendition(RenditionInfo {
                        codecs,
                        width: info.width,
                        height: info.height,
                        bandwidth,
                    });
                }
                let Some(dts) = self.timeline.video_dts(frame.pts, frame.capture_time_ms, frame.keyframe) else {
                    return;
                };
                self.last_video_pts = Some(frame.pts);
                self.segmenter.push_video(TimedSample {
                    dts,
                    duration: None,
                    keyframe: frame.keyframe,
                    program_time_ms: frame.capture_time_ms,
                    data: frame.payload,
                });
            }
            TrackKind::Audio => {
                self.audio_seen = true;
                if !self.timeline.is_anchored() {
                    return;
                }
                if self.transcoder.is_none() {
                    let mut transcoder = match OpusToAac::new(self.settings.aac_bitrate) {
                        Ok(t) => t,
                        Err(err) => {
                            tracing::error!(room = %self.stage.room, %err, "no AAC encoder: the program has no audio");
                            return;
                        }
                    };
                    // The first Opus packet of the epoch was captured a little after its
                    // keyframe: silence fills the difference, so the audio starts with the video
                    // and players see no hole at the start (up to MAX_LEAD_IN_MS).
                    let lead_ms = self
                        .timeline
                        .anchor_capture_ms()
                        .map_or(0, |anchor| (frame.capture_time_ms - anchor).clamp(0, MAX_LEAD_IN_MS));
                    transcoder.lead_in((lead_ms * 48) as usize);
                    self.transcoder = Some(transcoder);
                    self.first_opus_capture_ms = frame.capture_time_ms - lead_ms;
                }
                let Some(transcoder) = self.transcoder.as_mut() else {
                    return;
                };
                let aac = match transcoder.push(&frame.payload, frame.pts) {
                    Ok(aac) => aac,
                    Err(err) => {
                        tracing::debug!(room = %self.stage.room, %err, "Opus packet not transcoded");
                        return;
                    }
                };
                for aac_frame in aac {
                    let capture = self.first_opus_capture_ms + (aac_frame.pts * 1000 / 48_000) as i64;
                    if let Some(dts) = self.timeline.audio_dts(aac_frame.pts, capture, AAC_FRAME_SAMPLES) {
                        self.segmenter.push_audio(TimedSample {
                            dts,
                            duration: Some(AAC_FRAME_SAMPLES),
                            keyframe: true,
                            program_time_ms: capture,
                            data: aac_frame.data,
                        });
                    }
                }
            }
        }
    }

    /// Hands the segmenter's events to the origin; segments go to disk before the replay
    /// playlist names them.
    async fn drain(&mut self) {
        while let Some(event) = self.segmenter.poll() {
            match &event {
                Event::KeyframeWanted => {
                    self.request_keyframe();
                    continue;
                }
                Event::Init { id, data } => {
                    let key = format!("init-{id}.mp4");
                    if let Err(err) = self.disk.put(&key, data.clone(), "video/mp4", IMMUTABLE).await {
                        tracing::warn!(room = %self.stage.room, %err, "init section not written");
                    }
                }
                Event::Part(part) => self.segment_bytes += part.data.len() as u64,
                _ => {}
            }
            self.stream.apply(&event);
            if let Event::SegmentClosed(segment) = event {
                tracing::debug!(room = %self.stage.room, msn = segment.msn, duration = segment.duration_s, "segment closed");
                if segment.duration_s > 0.0
                    && let Some(mut info) = self.stream.rendition()
                {
                    let bits_per_second = (self.segment_bytes as f64 * 8.0 / segment.duration_s) as u64;
                    info.bandwidth = info.bandwidth.max(bits_per_second * 5 / 4);
                    self.stream.set_rendition(info);
                }
                self.segment_bytes = 0;
                let key = format!("seg-{}.m4s", segment.msn);
                match self.disk.put(&key, segment.data.clone(), "video/iso.segment", IMMUTABLE).await {
                    Ok(()) => {
                        // The index line goes after the file, so it never names a missing one.
                        let entry = ReplayEntry::segment(&segment);
                        self.record(entry.clone()).await;
                        self.stream.segment_persisted(&entry);
                        self.stream.notify_replay_written();
                        self.write_replay_playlist().await;
                        if let Some(started) = self.started.take() {
                            tracing::info!(room = %self.stage.room, msn = segment.msn, "program started");
                            started();
                        }
                    }
                    Err(err) => {
                        tracing::error!(room = %self.stage.room, msn = segment.msn, %err, "segment not written: left out of the replay")
                    }
                }
            }
        }
    }
}

impl Program {
    // These two return `'static` futures: `Program` holds the transcoder, which is not `Sync`,
    // so no borrow of it may live across an await.

    /// Appends an entry to the replay index (on disk when the future completes).
    fn record(&self, entry: ReplayEntry) -> impl Future<Output = ()> + Send + 'static {
        let index = self.index.clone();
        let room = self.stage.room.clone();
        async move {
            let written =
                tokio::task::spawn_blocking(move || index.append(&entry)).await.map_err(std::io::Error::other);
            if let Err(err) = written.and_then(|r| r) {
                tracing::error!(%room, %err, "replay index not written: a restart will not restore this");
            }
        }
    }

    /// Writes the replay playlist beside its segments, so the directory is standard HLS that
    /// any web server (or a bucket) can serve without townhall.
    fn write_replay_playlist(&self) -> impl Future<Output = ()> + Send + 'static {
        let text = self.stream.playlist(PlaylistView::Replay).text.clone();
        let disk = self.disk.clone();
        let room = self.stage.room.clone();
        async move {
            if let Err(err) = disk.put("replay.m3u8", text, "application/vnd.apple.mpegurl", "").await {
                tracing::warn!(%room, %err, "replay playlist not written to disk");
            }
        }
    }
}
