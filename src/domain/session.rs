//! Web logins: the session a cookie names, and the policy that throttles failed logins. No I/O.

use super::Millis;
use super::access::Principal;

/// A session as stored: only the hash of the cookie's value is kept.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: i64,
    pub csrf: String,
    pub now: Millis,
    pub expires_at: Millis,
}

/// A live session: who it is and the token its forms carry.
#[derive(Clone, Debug)]
pub struct WebSession {
    pub principal: Principal,
    pub csrf: String,
    pub last_seen_at: Millis,
}

/// A session of a user, for an admin who revokes them (never the cookie value).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionRow {
    pub user_id: i64,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
}

/// A file uploaded on a page, kept between its dry run and the confirmation.
#[derive(Clone, Debug)]
pub struct StashedUpload {
    pub id_hash: String,
    pub user_id: i64,
    pub org_id: i64,
    pub kind: Option<String>,
    pub file_name: String,
    pub bytes: Vec<u8>,
    pub created_at: Millis,
}

/// Failed logins recorded for one key (a username or an address) since `first_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failures {
    pub failures: i64,
    pub first_at: Millis,
}

/// How many failures a key may have in a window before it is refused until the window ends.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    pub per_user: i64,
    pub per_address: i64,
    pub window_ms: Millis,
}

impl Default for Throttle {
    /// Five wrong passwords for one account in 15 minutes; an address (a school's NAT holds many
    /// staff) gets 30.
    fn default() -> Self {
        Throttle {
            per_user: 5,
            per_address: 30,
            window_ms: 15 * 60 * 1000,
        }
    }
}

impl Throttle {
    /// Until when a key with these failures is refused, if it is now.
    pub fn refused_until(&self, f: Option<Failures>, limit: i64, now: Millis) -> Option<Millis> {
        let f = f?;
        let end = f.first_at.saturating_add(self.window_ms);
        (f.failures >= limit && now < end).then_some(end)
    }
}

/// The throttle's keys for a login attempt: usernames compare without case, as logins do.
pub fn user_key(username: &str) -> String {
    format!("user:{}", username.trim().to_lowercase())
}

pub fn address_key(address: &str) -> String {
    format!("addr:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_only_over_the_limit_and_inside_the_window() {
        let t = Throttle::default();
        let f = |n| {
            Some(Failures {
                failures: n,
                first_at: 1_000,
            })
        };
        assert_eq!(t.refused_until(None, 5, 2_000), None);
        assert_eq!(t.refused_until(f(4), 5, 2_000), None);
        assert_eq!(t.refused_until(f(5), 5, 2_000), Some(1_000 + t.window_ms));
        assert_eq!(t.refused_until(f(9), 5, 1_000 + t.window_ms), None);
    }
}
