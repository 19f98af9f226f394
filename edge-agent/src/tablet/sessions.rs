//! Tablet sessions: a random token in an `HttpOnly` cookie, kept here only as its sha256. A
//! session ends when the officer signs out, after `session_hours`, or after `idle_minutes`
//! without an officer's action (signing in, recording, or the page reporting a touch or key),
//! so a tablet left in the bay does not keep the last officer signed in. The page's own polling
//! does not count as activity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sha256_hex;

struct Session {
    officer: String,
    until: Instant,
    active: Instant,
}

/// The open sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    lifetime: Duration,
    idle: Duration,
}

impl Sessions {
    /// No sessions yet; each lasts at most `lifetime`, and `idle` without activity.
    pub fn new(lifetime: Duration, idle: Duration) -> Self {
        Self {
            map: Mutex::default(),
            lifetime,
            idle,
        }
    }

    fn live_at(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.until > now && now.saturating_duration_since(s.active) < self.idle);
        map
    }

    /// Opens a session for `officer`; returns its token.
    pub fn open(&self, officer: &str) -> String {
        self.open_at(officer, Instant::now())
    }

    fn open_at(&self, officer: &str, now: Instant) -> String {
        let token = hex::encode(rand::random::<[u8; 32]>());
        let session = Session {
            officer: officer.to_owned(),
            until: now + self.lifetime,
            active: now,
        };
        self.live_at(now).insert(sha256_hex(&token), session);
        token
    }

    /// The officer of a live session; `activity` marks an officer's action (it restarts the
    /// idle clock).
    pub fn officer(&self, token: &str, activity: bool) -> Option<String> {
        self.officer_at(token, activity, Instant::now())
    }

    fn officer_at(&self, token: &str, activity: bool, now: Instant) -> Option<String> {
        let mut map = self.live_at(now);
        let session = map.get_mut(&sha256_hex(token))?;
        if activity {
            session.active = now;
        }
        Some(session.officer.clone())
    }

    /// Ends a session; whether there was one.
    pub fn close(&self, token: &str) -> bool {
        self.live_at(Instant::now())
            .remove(&sha256_hex(token))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_on_sign_out_when_idle_and_at_their_end_but_not_while_used() {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let s = Sessions::new(minutes(12 * 60), minutes(15));
        let a = s.open("off1");
        assert_eq!(s.officer(&a, false).as_deref(), Some("off1"));
        assert!(s.close(&a) && s.officer(&a, false).is_none());

        let t0 = Instant::now();
        let b = s.open_at("off2", t0);
        // Used every ten minutes: alive after an hour.
        for k in 1..=6 {
            assert!(s.officer_at(&b, true, t0 + minutes(10 * k)).is_some());
        }
        // Polling alone does not keep it: 15 minutes after the last action it is gone.
        assert!(s.officer_at(&b, false, t0 + minutes(70)).is_some());
        assert!(s.officer_at(&b, false, t0 + minutes(75)).is_none(), "idle");

        let c = s.open_at("off3", t0);
        let mut at = t0;
        while at < t0 + minutes(12 * 60 - 10) {
            at += minutes(10);
            assert!(s.officer_at(&c, true, at).is_some());
        }
        assert!(
            s.officer_at(&c, true, t0 + minutes(12 * 60)).is_none(),
            "over"
        );
        assert!(s.officer("no such token", false).is_none());
    }
}
