//! The limits of a room's interaction, with their defaults.
//!
//! The binary embeds [`InteractionConfig`] in its config file (`[interaction]`); every field has
//! a default, and unknown keys are refused.

use serde::{Deserialize, Serialize};

/// Limits of chat, Q&A and polls. Lengths count Unicode scalar values (`char`s), after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InteractionConfig {
    /// Longest chat message. Default 500.
    pub chat_max_chars: usize,
    /// Chat messages per participant: a token bucket. Default 5 at once, then 1 per second.
    pub chat_rate: RateLimit,
    /// Chat messages kept in memory for history pages and moderation (older ones stay in the
    /// event store). Default 10,000.
    pub chat_history_kept: usize,
    /// Longest question. Default 500.
    pub question_max_chars: usize,
    /// Questions per participant: a token bucket. Default 3 at once, then 1 per 10 seconds.
    pub question_rate: RateLimit,
    /// Longest poll question. Default 300.
    pub poll_question_max_chars: usize,
    /// Longest poll option. Default 100.
    pub poll_option_max_chars: usize,
    /// Hosts and presenters skip the rate limits. Default true.
    pub moderators_exempt: bool,
}

impl Default for InteractionConfig {
    fn default() -> Self {
        Self {
            chat_max_chars: 500,
            chat_rate: RateLimit { burst: 5, interval_ms: 1_000 },
            chat_history_kept: 10_000,
            question_max_chars: 500,
            question_rate: RateLimit { burst: 3, interval_ms: 10_000 },
            poll_question_max_chars: 300,
            poll_option_max_chars: 100,
            moderators_exempt: true,
        }
    }
}

/// A token bucket: `burst` messages at once, then one more every `interval_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub burst: u32,
    pub interval_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_keys_and_unknown_keys_are_refused() {
        let c: InteractionConfig = serde_json::from_str(r#"{"chat_max_chars":200}"#).expect("valid config");
        assert_eq!(c.chat_max_chars, 200);
        assert_eq!(c.chat_rate, RateLimit { burst: 5, interval_ms: 1_000 });
        assert!(serde_json::from_str::<InteractionConfig>(r#"{"chat_max_char":200}"#).is_err());
    }
}
