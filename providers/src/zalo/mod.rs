//! Zalo: the OA access-token manager shared by Zalo adapters, the ZNS adapter, and how Zalo's JSON
//! `error` codes are classified (HTTP status is 200 even when a send fails).

pub mod token;
pub mod zns;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// A number Zalo may send as a JSON string or a JSON number (`expires_in`, quota fields).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NumOrString {
    Num(i64),
    Str(String),
}

impl NumOrString {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            NumOrString::Num(n) => Some(*n),
            NumOrString::Str(s) => s.trim().parse().ok(),
        }
    }
}

/// Time left until the next 00:00 in Asia/Ho_Chi_Minh (UTC+7 all year, no daylight saving), when a
/// ZNS daily quota starts again.
pub fn until_next_vn_midnight(now: SystemTime) -> Duration {
    const DAY: u64 = 86_400;
    const VN_OFFSET: u64 = 7 * 3600;
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let local = secs + VN_OFFSET;
    Duration::from_secs(DAY - local % DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_resets_at_vietnamese_midnight() {
        // 2026-11-23 16:59:00 UTC is 23:59 in Hà Nội: one minute to go.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_453_140);
        assert_eq!(until_next_vn_midnight(t), Duration::from_secs(60));
        // 17:00 UTC is 00:00 local: a whole day to go.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_453_200);
        assert_eq!(until_next_vn_midnight(t), Duration::from_secs(86_400));
    }

    #[test]
    fn numbers_arrive_as_strings_or_numbers() {
        let a: NumOrString = serde_json::from_str("\"90000\"").unwrap();
        let b: NumOrString = serde_json::from_str("90000").unwrap();
        assert_eq!(a.as_i64(), Some(90_000));
        assert_eq!(b.as_i64(), Some(90_000));
    }
}
