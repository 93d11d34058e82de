//! Counters of the ingest side, rendered in the Prometheus text format (exposition format 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident : $kind:ident ),* $(,)?) => {
        /// Ingest counters; all are process-wide, relaxed atomics.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[doc = $doc])* pub $name: $kind, )*
        }

        impl Metrics {
            /// Appends every counter as `townhall_<name>` with its help text and type.
            pub fn render(&self, out: &mut String) {
                $(
                    let help = concat!($($doc),*).trim();
                    let kind = counters!(@type $kind);
                    let _ = writeln!(out, "# HELP townhall_{} {}", stringify!($name), help);
                    let _ = writeln!(out, "# TYPE townhall_{} {}", stringify!($name), kind);
                    let _ = writeln!(out, "townhall_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
            }
        }
    };
    (@type AtomicU64) => { "counter" };
    (@type AtomicI64) => { "gauge" };
}

counters! {
    /// WebRTC sessions open now, publishers and subscribers.
    sessions_active: AtomicI64,
    /// WHIP publisher sessions open now.
    publishers_active: AtomicI64,
    /// WHEP subscriber sessions open now.
    subscribers_active: AtomicI64,
    /// WebRTC sessions ever created.
    sessions_total: AtomicU64,
    /// Sessions that reached the connected state.
    sessions_connected_total: AtomicU64,
    /// Sessions that ended because ICE or DTLS failed.
    sessions_failed_total: AtomicU64,
    /// UDP datagrams received on the media port.
    udp_received_packets_total: AtomicU64,
    /// Bytes received on the media port.
    udp_received_bytes_total: AtomicU64,
    /// UDP datagrams sent from the media port.
    udp_sent_packets_total: AtomicU64,
    /// Bytes sent from the media port.
    udp_sent_bytes_total: AtomicU64,
    /// Datagrams dropped because no session owns their source address or ufrag.
    udp_unroutable_packets_total: AtomicU64,
    /// Datagrams dropped because a session's input queue was full.
    session_queue_dropped_packets_total: AtomicU64,
    /// RTP packets received from publishers.
    rtp_received_packets_total: AtomicU64,
    /// RTP packets sent to subscribers.
    rtp_forwarded_packets_total: AtomicU64,
    /// RTP packets a subscriber lost because it fell behind its bounded queue.
    rtp_subscriber_dropped_packets_total: AtomicU64,
    /// Keyframe requests (PLI/FIR) received from subscribers.
    keyframe_requests_received_total: AtomicU64,
    /// Keyframe requests (PLI) sent to publishers, after throttling.
    keyframe_requests_sent_total: AtomicU64,
    /// Access units depacketized from publishers' video.
    video_frames_total: AtomicU64,
    /// Opus packets taken from publishers' audio.
    audio_frames_total: AtomicU64,
    /// Video access units dropped whole because a packet of theirs was lost or malformed.
    video_frames_dropped_total: AtomicU64,
    /// RTP packets the depacketizer refused as malformed.
    rtp_malformed_packets_total: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::add(&m.udp_received_bytes_total, 1200);
        m.sessions_active.fetch_add(2, Ordering::Relaxed);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("# TYPE townhall_udp_received_bytes_total counter\ntownhall_udp_received_bytes_total 1200\n")
        );
        assert!(out.contains("# TYPE townhall_sessions_active gauge\ntownhall_sessions_active 2\n"));
        assert!(
            out.contains("# HELP townhall_sessions_active WebRTC sessions open now, publishers and subscribers.\n")
        );
    }
}
