//! The SFU stage of one room: who publishes, who is on the program, and the buses that carry
//! their media (forwarded RTP for WHEP subscribers, depacketized `Frame`s for the packager).
//!
//! Decided here:
//! - A presenter is a name within the room. A new WHIP session for a name that is already live
//!   replaces the old session; subscribers of that presenter stay connected and go on with the
//!   new session's media (their tracks are re-based by [`crate::rewrite`]).
//! - Fan-out uses one bounded broadcast queue per presenter: a publisher never waits for a
//!   subscriber; a subscriber that falls more than the queue behind loses the oldest packets
//!   (counted) and asks for a keyframe.
//! - The program is the first presenter to go live until the host chooses another; when the
//!   program's presenter leaves, the next live presenter (in order of arrival) takes over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtc::rtp;
use tokio::sync::{Notify, broadcast, watch};
use townhall_packager::{Frame, TrackInfo, TrackKind};

use crate::error::{Error, Result};

/// One RTP packet on its way from a publisher to subscribers.
#[derive(Debug)]
pub struct ForwardedPacket {
    pub kind: TrackKind,
    /// Where a subscriber may start forwarding video (IDR or parameter sets).
    pub keyframe_start: bool,
    pub packet: rtp::Packet,
}

/// One frame on the room's frame bus, with the track it belongs to.
#[derive(Debug, Clone)]
pub struct StageFrame {
    pub presenter: String,
    pub track: Arc<TrackInfo>,
    pub frame: Frame,
}

/// A presenter's media as subscribers see it, kept across that presenter's reconnections.
#[derive(Debug)]
pub struct Feed {
    pub presenter: String,
    packets: broadcast::Sender<Arc<ForwardedPacket>>,
    keyframe_wanted: Notify,
    /// The WHIP session publishing now, if any.
    session: Mutex<Option<String>>,
    /// Order of going live, for program fallback.
    live_since: AtomicU64,
    /// Muted by a moderator: its audio is replaced by silence for everyone (stage and program),
    /// across its reconnections, until unmuted.
    audio_muted: AtomicBool,
    /// Video turned off by a moderator: black pictures in place of theirs for everyone, across
    /// its reconnections, until turned on (see [`crate::video_off`]).
    video_off: AtomicBool,
}

/// One 20 ms Opus frame of silence (RFC 6716 §3.1: TOC 0xF8, CELT-only fullband 20 ms, mono,
/// one frame; then a frame that decodes to silence), what WebRTC stacks send in DTX.
pub const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

impl Feed {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ForwardedPacket>> {
        self.packets.subscribe()
    }

    pub fn send(&self, packet: ForwardedPacket) {
        // No subscriber is not an error: the packet simply has nowhere to go.
        let _ = self.packets.send(Arc::new(packet));
    }

    /// Asks the publishing session for a keyframe (it throttles).
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.notify_one();
    }

    /// Resolves when a subscriber asked for a keyframe.
    pub async fn keyframe_wanted(&self) {
        self.keyframe_wanted.notified().await
    }

    pub fn session(&self) -> Option<String> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_live(&self) -> bool {
        self.session().is_some()
    }

    pub fn is_audio_muted(&self) -> bool {
        self.audio_muted.load(Ordering::Relaxed)
    }

    pub fn set_audio_muted(&self, muted: bool) {
        self.audio_muted.store(muted, Ordering::Relaxed);
    }

    pub fn is_video_off(&self) -> bool {
        self.video_off.load(Ordering::Relaxed)
    }

    /// Turns the presenter's video off or on. On takes effect at their next keyframe, which is
    /// asked for here.
    pub fn set_video_off(&self, off: bool) {
        self.video_off.store(off, Ordering::Relaxed);
        if !off {
            self.request_keyframe();
        }
    }
}

/// Sizes of the stage's queues and limits.
#[derive(Debug, Clone, Copy)]
pub struct StageLimits {
    pub max_presenters: usize,
    /// Packets a subscriber may fall behind before it loses the oldest.
    pub subscriber_queue_packets: usize,
    /// Frames the packager may fall behind on the frame bus.
    pub frame_bus_capacity: usize,
}

/// The stage of one room.
#[derive(Debug)]
pub struct Stage {
    pub room: String,
    limits: StageLimits,
    feeds: Mutex<BTreeMap<String, Arc<Feed>>>,
    program: watch::Sender<Option<Arc<Feed>>>,
    frames: broadcast::Sender<StageFrame>,
    order: AtomicU64,
}

impl Stage {
    pub fn new(room: impl Into<String>, limits: StageLimits) -> Arc<Self> {
        Arc::new(Self {
            room: room.into(),
            limits,
            feeds: Mutex::new(BTreeMap::new()),
            program: watch::channel(None).0,
            frames: broadcast::channel(limits.frame_bus_capacity.max(1)).0,
            order: AtomicU64::new(0),
        })
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Feed>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `session` the publishing session of `presenter`. Returns the feed and the session
    /// it replaced, if any (the caller closes that one).
    pub fn go_live(&self, presenter: &str, session: &str) -> Result<(Arc<Feed>, Option<String>)> {
        let mut feeds = self.feeds();
        let live = feeds.values().filter(|f| f.is_live() && f.presenter != presenter).count();
        if live >= self.limits.max_presenters {
            return Err(Error::StageFull { max: self.limits.max_presenters });
        }
        let feed = feeds
            .entry(presenter.to_owned())
            .or_insert_with(|| {
                Arc::new(Feed {
                    presenter: presenter.to_owned(),
                    packets: broadcast::channel(self.limits.subscriber_queue_packets.max(16)).0,
                    keyframe_wanted: Notify::new(),
                    session: Mutex::new(None),
                    live_since: AtomicU64::new(0),
                    audio_muted: AtomicBool::new(false),
                    video_off: AtomicBool::new(false),
                })
            })
            .clone();
        drop(feeds);
        let replaced = feed.session.lock().unwrap_or_else(|e| e.into_inner()).replace(session.to_owned());
        if replaced.is_none() {
            feed.live_since.store(self.order.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        }
        self.program.send_if_modified(|program| {
            if program.as_ref().is_none_or(|p| !p.is_live()) {
                *program = Some(feed.clone());
                true
            } else {
                false
            }
        });
        Ok((feed, replaced))
    }

    /// Called when a publishing session ends. Does nothing if another session replaced it.
    pub fn leave(&self, presenter: &str, session: &str) {
        let Some(feed) = self.feed(presenter) else {
            return;
        };
        {
            let mut current = feed.session.lock().unwrap_or_else(|e| e.into_inner());
            if current.as_deref() != Some(session) {
                return;
            }
            *current = None;
        }
        let next = self.live_feeds().into_iter().next();
        self.program.send_if_modified(|program| {
            if program.as_ref().is_some_and(|p| p.presenter == presenter) && next.is_some() {
                *program = next.clone();
                true
            } else {
                false
            }
        });
    }

    pub fn feed(&self, presenter: &str) -> Option<Arc<Feed>> {
        self.feeds().get(presenter).cloned()
    }

    /// Every presenter the stage knows (live or not: a feed and its moderation outlive a
    /// session), by name.
    pub fn presenters(&self) -> Vec<Arc<Feed>> {
        self.feeds().values().cloned().collect()
    }

    /// Presenters publishing now, in the order they went live.
    pub fn live_feeds(&self) -> Vec<Arc<Feed>> {
        let mut live: Vec<Arc<Feed>> = self.feeds().values().filter(|f| f.is_live()).cloned().collect();
        live.sort_by_key(|f| f.live_since.load(Ordering::Relaxed));
        live
    }

    /// Puts a live presenter on the program.
    pub fn set_program(&self, presenter: &str) -> Result<()> {
        let feed = self
            .feed(presenter)
            .filter(|f| f.is_live())
            .ok_or_else(|| Error::UnknownPresenter(presenter.to_owned()))?;
        self.program.send_replace(Some(feed));
        Ok(())
    }

    /// The program's presenter now, and changes to come.
    pub fn watch_program(&self) -> watch::Receiver<Option<Arc<Feed>>> {
        self.program.subscribe()
    }

    pub fn program(&self) -> Option<String> {
        self.program.borrow().as_ref().map(|f| f.presenter.clone())
    }

    /// The room's frame bus: every presenter's depacketized frames.
    pub fn subscribe_frames(&self) -> broadcast::Receiver<StageFrame> {
        self.frames.subscribe()
    }

    pub fn publish_frame(&self, frame: StageFrame) {
        let _ = self.frames.send(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(max: usize) -> Arc<Stage> {
        Stage::new("r", StageLimits { max_presenters: max, subscriber_queue_packets: 64, frame_bus_capacity: 64 })
    }

    #[test]
    fn first_presenter_takes_the_program_and_the_next_takes_over() {
        let s = stage(4);
        s.go_live("alice", "s1").unwrap();
        s.go_live("bob", "s2").unwrap();
        assert_eq!(s.program().as_deref(), Some("alice"));
        s.leave("alice", "s1");
        assert_eq!(s.program().as_deref(), Some("bob"));
        s.set_program("alice").unwrap_err();
        s.go_live("alice", "s3").unwrap();
        s.set_program("alice").unwrap();
        assert_eq!(s.program().as_deref(), Some("alice"));
    }

    #[test]
    fn reconnection_replaces_and_stale_leave_is_ignored() {
        let s = stage(1);
        let (feed, replaced) = s.go_live("alice", "s1").unwrap();
        assert_eq!(replaced, None);
        let (feed2, replaced) = s.go_live("alice", "s2").unwrap();
        assert!(Arc::ptr_eq(&feed, &feed2));
        assert_eq!(replaced.as_deref(), Some("s1"));
        s.leave("alice", "s1");
        assert_eq!(feed.session().as_deref(), Some("s2"));
        assert!(matches!(s.go_live("bob", "s3"), Err(Error::StageFull { max: 1 })));
        s.leave("alice", "s2");
        assert!(!feed.is_live());
        s.go_live("bob", "s3").unwrap();
    }
}
