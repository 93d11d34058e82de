//! One endpoint's delivery queue and the retry schedule, as a plain state machine: events go in
//! with [`EndpointQueue::push`], [`EndpointQueue::next`] says what to send now or until when to
//! wait, and the outcome of each attempt comes back with [`EndpointQueue::delivered`] or
//! [`EndpointQueue::failed`]. Time is an argument; nothing here sleeps or sends.
//!
//! Decided here (the Standard Webhooks specification leaves retries to the sender):
//! - Delivery is in order: the oldest event is retried until it is delivered or given up, and
//!   the events behind it wait (a receiver sees `room.started` before `room.ended`).
//! - After the n-th failed attempt the next one is due `initial × 2^(n-1)`, at most `max`,
//!   stretched by a jitter of 0-25 % computed from the event id and n (so retries of many
//!   senders spread out, and a test can still predict them within a quarter).
//! - After `max_attempts` failed attempts the event is given up (dropped and counted).
//! - More than `queue_max` events waiting: the oldest is dropped (counted), even while it is
//!   being sent; its outcome is then ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::Event;

/// When to retry, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait after the `failed`-th failed attempt (1 for the first) of event `id`.
    pub fn delay(&self, failed: u32, id: &str) -> Duration {
        let doubling = 1u32.checked_shl(failed.saturating_sub(1)).unwrap_or(u32::MAX);
        let base = self.initial.saturating_mul(doubling).min(self.max);
        let quarter = fnv1a(id.as_bytes(), failed) % 1_000;
        (base + base.mul_f64(quarter as f64 / 4_000.0)).min(self.max)
    }
}

/// FNV-1a over the id and the attempt number: a stable, well-spread jitter.
fn fnv1a(bytes: &[u8], failed: u32) -> u64 {
    bytes
        .iter()
        .chain(&failed.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// An event waiting for one endpoint. `seq` orders events and names them on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: u64,
    pub event: Event,
    /// Failed attempts so far.
    pub failed: u32,
    /// When the next attempt is due.
    pub due: Instant,
}

/// What the shell does next.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    /// Send this event now: its `failed + 1`-th attempt.
    Send(&'a Pending),
    /// Nothing is due before this instant (or before a new event arrives).
    WaitUntil(Instant),
    /// Nothing to send.
    Idle,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Retried at this instant.
    RetryAt(Instant),
    /// `max_attempts` reached: forgotten (the shell removes it from disk and counts it).
    GaveUp,
    /// It had already been dropped (queue overflow).
    Unknown,
}

#[derive(Debug)]
pub struct EndpointQueue {
    pending: VecDeque<Pending>,
    policy: RetryPolicy,
    queue_max: usize,
}

impl EndpointQueue {
    pub fn new(policy: RetryPolicy, queue_max: usize) -> Self {
        Self { pending: VecDeque::new(), policy, queue_max: queue_max.max(1) }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Queues an event, due at once once it is at the head; returns the seqs of the events
    /// dropped to stay within `queue_max`, oldest first.
    pub fn push(&mut self, seq: u64, event: Event, now: Instant) -> Vec<u64> {
        self.pending.push_back(Pending { seq, event, failed: 0, due: now });
        let mut dropped = Vec::new();
        while self.pending.len() > self.queue_max {
            if let Some(oldest) = self.pending.pop_front() {
                dropped.push(oldest.seq);
            }
        }
        dropped
    }

    /// What to do at `now`.
    pub fn next(&self, now: Instant) -> Next<'_> {
        match self.pending.front() {
            None => Next::Idle,
            Some(head) if head.due <= now => Next::Send(head),
            Some(head) => Next::WaitUntil(head.due),
        }
    }

    /// The attempt of `seq` succeeded: it is forgotten. `false` if it was no longer queued.
    pub fn delivered(&mut self, seq: u64) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p.seq != seq);
        self.pending.len() != before
    }

    /// The attempt of `seq` failed at `now`.
    pub fn failed(&mut self, seq: u64, now: Instant) -> Failed {
        let Some(index) = self.pending.iter().position(|p| p.seq == seq) else {
            return Failed::Unknown;
        };
        let pending = &mut self.pending[index];
        pending.failed += 1;
        if pending.failed >= self.policy.max_attempts {
            self.pending.remove(index);
            return Failed::GaveUp;
        }
        pending.due = now + self.policy.delay(pending.failed, &pending.event.id);
        Failed::RetryAt(pending.due)
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::EventType;
    use super::*;

    const POLICY: RetryPolicy =
        RetryPolicy { max_attempts: 3, initial: Duration::from_secs(1), max: Duration::from_secs(300) };

    fn event(id: &str) -> Event {
        Event { id: id.into(), kind: EventType::RoomCreated, at_ms: 0, data: serde_json::json!({"room": id}) }
    }

    fn sent(next: Next<'_>) -> u64 {
        match next {
            Next::Send(p) => p.seq,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_up_to_the_cap() {
        let policy = RetryPolicy { max_attempts: 10, ..POLICY };
        for failed in 1..=12u32 {
            let base = Duration::from_secs(1 << (failed - 1).min(20)).min(policy.max);
            let delay = policy.delay(failed, "msg_abc");
            assert!(delay >= base && delay <= base.mul_f64(1.25).min(policy.max), "{failed}: {delay:?}");
            // Deterministic: the same id and attempt wait the same.
            assert_eq!(delay, policy.delay(failed, "msg_abc"));
        }
        assert_eq!(policy.delay(40, "msg_abc"), policy.max);
        assert_ne!(policy.delay(1, "msg_a"), policy.delay(1, "msg_b"), "ids spread out");
    }

    #[test]
    fn delivers_in_order_and_retries_the_head_before_the_rest() {
        let t0 = Instant::now();
        let mut q = EndpointQueue::new(POLICY, 100);
        assert_eq!(q.next(t0), Next::Idle);
        q.push(1, event("msg_1"), t0);
        q.push(2, event("msg_2"), t0);
        assert_eq!(sent(q.next(t0)), 1);
        let Failed::RetryAt(at) = q.failed(1, t0) else { panic!() };
        assert!(at >= t0 + Duration::from_secs(1) && at <= t0 + Duration::from_millis(1_250));
        // The second waits behind the first.
        assert_eq!(q.next(t0), Next::WaitUntil(at));
        assert_eq!(sent(q.next(at)), 1);
        assert!(q.delivered(1));
        assert_eq!(sent(q.next(at)), 2);
        assert!(q.delivered(2));
        assert_eq!((q.next(at), q.len()), (Next::Idle, 0));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let t0 = Instant::now();
        let mut q = EndpointQueue::new(POLICY, 100);
        q.push(7, event("msg_7"), t0);
        assert!(matches!(q.failed(7, t0), Failed::RetryAt(_)));
        assert!(matches!(q.failed(7, t0), Failed::RetryAt(_)));
        assert_eq!(q.failed(7, t0), Failed::GaveUp);
        assert_eq!(q.len(), 0);
        assert_eq!(q.failed(7, t0), Failed::Unknown);
    }

    #[test]
    fn overflow_drops_the_oldest_even_in_flight() {
        let t0 = Instant::now();
        let mut q = EndpointQueue::new(POLICY, 2);
        assert!(q.push(1, event("msg_1"), t0).is_empty());
        assert_eq!(sent(q.next(t0)), 1);
        assert!(q.push(2, event("msg_2"), t0).is_empty());
        assert_eq!(q.push(3, event("msg_3"), t0), vec![1]);
        // The attempt that was under way comes back: ignored.
        assert!(!q.delivered(1));
        assert_eq!(sent(q.next(t0)), 2);
        assert_eq!(q.len(), 2);
    }
}
