//! The subscriber (WHEP) side of a session driver: which feed it plays (the program, following
//! the host's switches, or one presenter), and each forwarded packet re-based onto this
//! session's SSRC, sequence and timeline (video from a keyframe on).

use super::*;

impl Driver {
    pub(super) fn start_playing(&mut self) {
        match self.source.clone() {
            Some(PlaySource::Presenter(presenter)) => {
                let feed = self.ctx.stage.feed(&presenter);
                self.switch_to(feed);
            }
            Some(PlaySource::Program) => self.follow_program(),
            None => {}
        }
    }

    pub(super) fn follow_program(&mut self) {
        if !self.connected {
            return;
        }
        let Some(program) = self.program.as_mut() else {
            return;
        };
        let feed = program.borrow_and_update().clone();
        let same = match (&feed, &self.source_feed) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.switch_to(feed);
        }
    }

    pub(super) fn switch_to(&mut self, feed: Option<Arc<Feed>>) {
        tracing::info!(session = %self.ctx.id, room = %self.ctx.stage.room, presenter = ?feed.as_ref().map(|f| f.presenter.clone()), "subscriber source");
        self.packets = feed.as_ref().map(|f| f.subscribe());
        if let Some(feed) = &feed {
            feed.request_keyframe();
        }
        self.source_feed = feed;
        self.video_waits_for_keyframe = true;
    }

    pub(super) fn on_forwarded(
        &mut self,
        packet: std::result::Result<Arc<ForwardedPacket>, broadcast::error::RecvError>,
    ) {
        let packet = match packet {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Metrics::add(&self.ctx.metrics.rtp_subscriber_dropped_packets_total, n);
                self.video_waits_for_keyframe = true;
                if let Some(feed) = &self.source_feed {
                    feed.request_keyframe();
                }
                return;
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.packets = None;
                return;
            }
        };
        if packet.kind == TrackKind::Video && self.video_waits_for_keyframe {
            if !packet.keyframe_start {
                return;
            }
            self.video_waits_for_keyframe = false;
        }
        let Some(out) = self.outbound.get_mut(&packet.kind) else {
            return;
        };
        let Some(mut sender) = self.pc.rtp_sender(out.sender) else {
            return;
        };
        if out.payload_type.is_none() {
            let wanted = if packet.kind == TrackKind::Video { "video/h264" } else { "audio/opus" };
            out.payload_type = sender
                .get_parameters()
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(wanted))
                .map(|c| c.payload_type);
        }
        let Some(payload_type) = out.payload_type else {
            return;
        };
        let now = Instant::now();
        let mut rtp = packet.packet.clone();
        let rewritten = out.rewriter.rewrite(rtp.header.ssrc, rtp.header.sequence_number, rtp.header.timestamp, now);
        rtp.header.ssrc = out.ssrc;
        rtp.header.payload_type = payload_type;
        rtp.header.sequence_number = rewritten.sequence_number;
        rtp.header.timestamp = rewritten.timestamp;
        rtp.header.padding = false;
        rtp.header.extension = false;
        rtp.header.extensions.clear();
        rtp.header.extensions_padding = 0;
        rtp.header.csrc.clear();
        match sender.write_rtp(now, rtp) {
            Ok(()) => Metrics::inc(&self.ctx.metrics.rtp_forwarded_packets_total),
            Err(err) => tracing::trace!(session = %self.ctx.id, %err, "forward failed"),
        }
    }
}
