//! Who may use the interface: one launch code, redeemed once for one
//! browser session, which ends when idle.
//!
//! Pure state with the time passed in, so the rules are tested without
//! waiting. The code travels in a URL (a browser's command line can be
//! read by other local users), so it is single-use and short-lived; the
//! session token lives only in an HttpOnly cookie.

use std::time::{Duration, Instant};

/// A random 128-bit secret, shown as 32 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 16]);

impl Secret {
    fn random() -> Secret {
        Secret(rand::random())
    }

    /// The secret as it goes in a URL or a cookie.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `given` (hex) is this secret, compared in constant time.
    fn matches(&self, given: &str) -> bool {
        let mut given_bytes = [0u8; 16];
        if hex::decode_to_slice(given, &mut given_bytes).is_err() {
            return false;
        }
        self.0
            .iter()
            .zip(given_bytes)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a launch code was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It was redeemed already. The session it gave ends too: the code
    /// was seen by someone else (another local user may have read it from
    /// the browser's command line and raced the browser to it).
    Used,
    /// It is older than its validity.
    Expired,
    /// It is not the code this run issued.
    Unknown,
}

impl Refusal {
    /// In plain words, with the next step.
    pub fn words(self) -> &'static str {
        match self {
            Refusal::Used => "this launch link was used already, so it was seen by someone else: the session it gave has been ended. Press Enter where `backchannel ui` runs for a new link",
            Refusal::Expired => "this launch link has expired (it is valid for 60 seconds). Press Enter where `backchannel ui` runs for a new link",
            Refusal::Unknown => "this is not the launch link `backchannel ui` printed. Copy the link from its terminal",
        }
    }
}

/// Why a request was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No session, or not this one.
    NoSession,
    /// The session ended after being idle.
    Idle,
}

struct Code {
    secret: Secret,
    issued: Instant,
    redeemed: bool,
}

struct Session {
    token: Secret,
    last_seen: Instant,
}

/// The launch code and the browser session of one `backchannel ui` run.
pub struct Access {
    code: Code,
    session: Option<Session>,
    launch_valid: Duration,
    idle: Duration,
}

impl Access {
    /// A first launch code, issued `now`.
    pub fn new(now: Instant, launch_valid: Duration, idle: Duration) -> Access {
        Access {
            code: Code {
                secret: Secret::random(),
                issued: now,
                redeemed: false,
            },
            session: None,
            launch_valid,
            idle,
        }
    }

    /// The code awaiting redemption.
    pub fn code(&self) -> &Secret {
        &self.code.secret
    }

    /// A new code (the person at the terminal asked): the old one dies,
    /// and redeeming the new one replaces the browser session.
    pub fn reissue(&mut self, now: Instant) -> Secret {
        self.code = Code {
            secret: Secret::random(),
            issued: now,
            redeemed: false,
        };
        self.code.secret.clone()
    }

    /// Redeems `given` for a session token, once.
    pub fn redeem(&mut self, given: &str, now: Instant) -> Result<Secret, Refusal> {
        if !self.code.secret.matches(given) {
            return Err(Refusal::Unknown);
        }
        if self.code.redeemed {
            // Whoever holds the session may be the one who raced the
            // browser to the code: nobody keeps it.
            self.session = None;
            return Err(Refusal::Used);
        }
        if now.saturating_duration_since(self.code.issued) > self.launch_valid {
            return Err(Refusal::Expired);
        }
        self.code.redeemed = true;
        let token = Secret::random();
        self.session = Some(Session {
            token: token.clone(),
            last_seen: now,
        });
        Ok(token)
    }

    /// Lets in a request carrying `token`; an active one (`touch`) keeps
    /// the session alive. An idle session ends here, for good.
    pub fn admit(&mut self, token: Option<&str>, now: Instant, touch: bool) -> Result<(), Denied> {
        let Some(session) = &mut self.session else {
            return Err(Denied::NoSession);
        };
        if !token.is_some_and(|t| session.token.matches(t)) {
            return Err(Denied::NoSession);
        }
        if now.saturating_duration_since(session.last_seen) > self.idle {
            self.session = None;
            return Err(Denied::Idle);
        }
        if touch {
            session.last_seen = now;
        }
        Ok(())
    }

    /// How long a session may stay idle.
    pub fn idle(&self) -> Duration {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn access(t0: Instant) -> Access {
        Access::new(t0, MIN, 10 * MIN)
    }

    #[test]
    fn a_code_is_redeemed_once() {
        let t0 = Instant::now();
        let mut a = access(t0);
        let code = a.code().to_hex();
        let token = a.redeem(&code, t0).expect("first redemption");
        assert_eq!(a.admit(Some(&token.to_hex()), t0, true), Ok(()));
        assert_eq!(a.redeem(&code, t0), Err(Refusal::Used));
        assert_eq!(
            a.admit(Some(&token.to_hex()), t0, true),
            Err(Denied::NoSession),
            "a second use ends the session the first one gave"
        );
    }

    #[test]
    fn a_code_expires_after_its_validity() {
        let t0 = Instant::now();
        let mut a = access(t0);
        let code = a.code().to_hex();
        assert_eq!(
            a.redeem(&code, t0 + MIN + Duration::from_millis(1)),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_wrong_code_or_token_is_refused() {
        let t0 = Instant::now();
        let mut a = access(t0);
        assert_eq!(a.redeem("00", t0), Err(Refusal::Unknown));
        assert_eq!(a.redeem(&"0".repeat(32), t0), Err(Refusal::Unknown));
        assert_eq!(a.admit(None, t0, true), Err(Denied::NoSession));
        let code = a.code().to_hex();
        a.redeem(&code, t0).unwrap();
        assert_eq!(a.admit(Some(&code), t0, true), Err(Denied::NoSession));
    }

    #[test]
    fn an_idle_session_ends_and_activity_keeps_it() {
        let t0 = Instant::now();
        let mut a = access(t0);
        let code = a.code().to_hex();
        let token = a.redeem(&code, t0).unwrap().to_hex();
        // Active every 9 minutes: still in after 27.
        for i in 1..=3 {
            assert_eq!(a.admit(Some(&token), t0 + 9 * i * MIN, true), Ok(()));
        }
        // A passive request (the live stream) does not keep it alive.
        assert_eq!(a.admit(Some(&token), t0 + 35 * MIN, false), Ok(()));
        assert_eq!(
            a.admit(Some(&token), t0 + 38 * MIN, true),
            Err(Denied::Idle)
        );
        assert_eq!(
            a.admit(Some(&token), t0 + 38 * MIN, true),
            Err(Denied::NoSession)
        );
    }

    #[test]
    fn a_new_code_replaces_the_session() {
        let t0 = Instant::now();
        let mut a = access(t0);
        let first = a.code().to_hex();
        let old = a.redeem(&first, t0).unwrap().to_hex();
        let second = a.reissue(t0).to_hex();
        assert_eq!(a.redeem(&first, t0), Err(Refusal::Unknown));
        let new = a.redeem(&second, t0).unwrap().to_hex();
        assert_eq!(a.admit(Some(&old), t0, true), Err(Denied::NoSession));
        assert_eq!(a.admit(Some(&new), t0, true), Ok(()));
    }
}
