//! The figures of a run: percentiles, distributions and the per-scenario summaries.

use super::*;

pub(crate) fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// p50/p99/max of µs values, in ms.
pub(crate) fn distribution_ms(mut values: Vec<u64>) -> Value {
    values.sort_unstable();
    let ms = |v: Option<u64>| v.map(|v| round1(v as f64 / 1000.0));
    json!({
        "count": values.len(),
        "p50": ms(percentile(&values, 0.50)),
        "p99": ms(percentile(&values, 0.99)),
        "max": ms(values.last().copied()),
    })
}

pub(crate) fn tally<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.to_owned()).or_default() += 1;
    }
    counts
}

pub(crate) fn connect_summary(config: &Config, reports: &[ViewerReport], connected_s: f64) -> Value {
    let times: Vec<u64> = reports.iter().filter_map(|r| r.connect_us).collect();
    json!({
        "scenario": "connect",
        "viewers": config.viewers,
        "welcomed": times.len(),
        "ramp_s": config.ramp.as_secs_f64(),
        "all_welcomed_after_s": round1(connected_s),
        "connect_to_welcome_ms": distribution_ms(times),
        "errors": tally(reports.iter().filter_map(|r| r.connect_error.as_deref())),
    })
}

pub(crate) fn vote_summary(
    config: &Config,
    shared: &Shared,
    counts: &HostCounts,
    reports: &[ViewerReport],
    closed: &Value,
) -> Value {
    let opened = shared.poll_open_sent.load(Ordering::Relaxed).saturating_sub(1);
    let voters: Vec<&ViewerReport> = reports.iter().filter(|r| r.connect_us.is_some()).collect();
    let acked: Vec<u64> = voters.iter().filter_map(|r| r.vote_acked_at_us).collect();
    let all_acked = acked.len() == voters.len() && !voters.is_empty();
    let last_ack = acked.iter().max().map(|at| at.saturating_sub(opened) as f64 / 1e6);
    // What the final counts must be: one vote per acked viewer, for option index % 4.
    let mut expected = vec![0u64; POLL_OPTIONS];
    for (index, report) in reports.iter().enumerate() {
        if report.vote_acked_at_us.is_some() {
            expected[index % POLL_OPTIONS] += 1;
        }
    }
    let counts_final: Vec<u64> =
        closed["counts"].as_array().map_or(Vec::new(), |c| c.iter().map(|v| v.as_u64().unwrap_or(0)).collect());
    let same_at_viewers =
        voters.iter().filter(|r| r.poll_closed.as_ref().is_some_and(|c| c["counts"] == closed["counts"])).count();
    let mut results: Vec<u32> = voters.iter().map(|r| r.poll_results).collect();
    results.sort_unstable();
    json!({
        "scenario": "vote",
        "viewers": voters.len(),
        "window_s": config.vote_window.as_secs_f64(),
        "acked": acked.len(),
        "all_acked": all_acked,
        "all_acked_s": last_ack.map(|s| (s * 1000.0).round() / 1000.0),
        "ack_ms": distribution_ms(voters.iter().filter_map(|r| r.vote_ack_us).collect()),
        "errors": tally(voters.iter().filter_map(|r| r.vote_error.as_deref())),
        "poll_opened_ms": distribution_ms(voters.iter().filter_map(|r| r.poll_opened_delay_us).collect()),
        "final_counts": counts_final,
        "final_voters": closed["voters"],
        "final_sum": counts_final.iter().sum::<u64>(),
        "final_counts_as_voted": counts_final == expected,
        "final_error": closed.get("error"),
        "poll_closed_at_viewers": same_at_viewers,
        "poll_results_per_viewer_p50": percentile(&results, 0.5),
        "votes_seen_by_host": counts.votes_seen.load(Ordering::Relaxed),
        "host_resyncs": counts.resync.load(Ordering::Relaxed),
        "resyncs": voters.iter().map(|r| r.resyncs as u64).sum::<u64>(),
        "viewers_resynced": voters.iter().filter(|r| r.resyncs > 0).count(),
        "ended_early": tally(voters.iter().filter_map(|r| r.ended.as_deref())),
    })
}

pub(crate) fn chat_summary(
    counts: &HostCounts,
    reports: &[ViewerReport],
    sent: &ChatSent,
    alive: usize,
    drain_s: f64,
    host_resyncs: u64,
) -> Value {
    let mut delays: Vec<u32> = Vec::new();
    let mut duplicates = 0u64;
    for report in reports {
        delays.extend(report.chat_delays.iter().copied().filter(|d| *d != u32::MAX));
        duplicates += report.chat_duplicates as u64;
    }
    let received = delays.len() as u64;
    let expected = (alive * sent.sent) as u64;
    let ms = |v: Option<u32>| v.map(|v| round1(v as f64 / 1000.0));
    let (p50, p99, max) = if delays.is_empty() {
        (None, None, None)
    } else {
        let len = delays.len();
        let p50 = *delays.select_nth_unstable(len.div_ceil(2) - 1).1;
        let p99 = *delays.select_nth_unstable(((len as f64 * 0.99).ceil() as usize).clamp(1, len) - 1).1;
        let max = delays.iter().copied().max();
        (Some(p50), Some(p99), max)
    };
    let complete = reports
        .iter()
        .filter(|r| !r.chat_delays.is_empty() && r.chat_delays[..sent.sent].iter().all(|d| *d != u32::MAX))
        .count();
    json!({
        "scenario": "chat",
        "viewers": alive,
        "messages": sent.sent,
        "send_seconds": round1(sent.seconds),
        "send_late_ms": {"p99": sent.late_p99_ms, "max": sent.late_max_ms},
        "host_acks": counts.chat_acks.load(Ordering::Relaxed),
        "host_errors": counts.chat_errors(),
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "duplicates": duplicates,
        "viewers_with_every_message": complete,
        "delay_ms": {"p50": ms(p50), "p99": ms(p99), "max": ms(max)},
        "drain_after_last_send_s": round1(drain_s),
        "resyncs": reports.iter().map(|r| r.chat_resyncs as u64).sum::<u64>(),
        "viewers_resynced": reports.iter().filter(|r| r.chat_resyncs > 0).count(),
        "host_resyncs": host_resyncs,
        "ended_early": tally(reports.iter().filter_map(|r| r.ended.as_deref())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_index_of_a_benchmark_chat_message_only() {
        let message = r#"{"seq":9,"at":1,"ts":2,"actor":{"participant_id":"host","name":"Host","role":"host"},"nonce":"chat-7","type":"chat_message","id":9,"text":"bench-7","visibility":"everyone"}"#;
        assert_eq!(chat_index(message), Some(7));
        assert_eq!(chat_index(r#"{"type":"ack","nonce":"chat-7"}"#), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }
}
