//! The wall clock in the one unit the store uses (Unix milliseconds).

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
