//! The relay's settings: credential lifetimes and every limit against abuse,
//! from one table. Each setting is a key of the TOML file (`--config`), a
//! flag (`--max-connections`) and an environment variable
//! (`BACKCHANNEL_RELAY_MAX_CONNECTIONS`), all parsed by [`RelayConfig::set`].
//!
//! ```
//! use backchannel_relay::RelayConfig;
//!
//! let mut config = RelayConfig::default();
//! config.set("posts_per_principal", "10/min").unwrap();
//! config.merge_toml("max_connections = 50\n").unwrap();
//! assert_eq!(config.max_connections, 50);
//! assert!(config.set("max_connection", "1").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A count allowed per window: `"60/min"`, `"600/h"`, `"5/s"`, `"100/day"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in one window.
    pub count: u32,
    /// The window, in milliseconds.
    pub window_ms: i64,
}

impl Rate {
    /// `count` per `window_ms`.
    pub const fn new(count: u32, window_ms: i64) -> Self {
        Rate { count, window_ms }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.window_ms {
            1_000 => "s",
            60_000 => "min",
            3_600_000 => "h",
            86_400_000 => "day",
            ms => return write!(f, "{}/{ms}ms", self.count),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a rate: write it as COUNT/UNIT, e.g. 60/min"))?;
        let count = count
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?}: {count:?} is not a whole number"))?;
        let window_ms = match unit.trim() {
            "s" => 1_000,
            "min" => 60_000,
            "h" => 3_600_000,
            "day" => 86_400_000,
            other => match other.strip_suffix("ms").map(str::parse::<i64>) {
                Some(Ok(ms)) if ms > 0 => ms,
                _ => return Err(format!("{s:?}: the unit is s, min, h, day or Nms")),
            },
        };
        Ok(Rate { count, window_ms })
    }
}

/// How new principals may register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register (the default on a loopback listener).
    Open,
    /// Only with a single-use code from `backchannel relay invite` (the
    /// default on any other listener).
    Invite,
}

impl fmt::Display for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
        })
    }
}

impl FromStr for Registration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Registration::Open),
            "invite" => Ok(Registration::Invite),
            _ => Err(format!("{s:?}: registration is `open` or `invite`")),
        }
    }
}

/// A setting that could not be taken.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No setting has this name.
    #[error("no relay setting is called `{0}`: `backchannel relay config-example` lists them")]
    UnknownKey(String),
    /// The value does not parse.
    #[error("relay setting `{key}`: {reason}")]
    BadValue {
        /// The setting.
        key: String,
        /// Why.
        reason: String,
    },
    /// The TOML file does not parse.
    #[error("the relay's config file is not valid TOML: {0}")]
    Toml(String),
}

/// One row of the settings table, for flags, docs and the example file.
#[derive(Clone, Copy, Debug)]
pub struct SettingInfo {
    /// The TOML key (`max_connections`); the flag is it with dashes.
    pub key: &'static str,
    /// What it limits and why.
    pub doc: &'static str,
}

impl SettingInfo {
    /// The flag, `--max-connections`, without the dashes.
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The environment variable, `BACKCHANNEL_RELAY_MAX_CONNECTIONS`.
    pub fn env(&self) -> String {
        format!("BACKCHANNEL_RELAY_{}", self.key.to_ascii_uppercase())
    }
}

macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $key:ident : $ty:ty = $default:expr ; )+) => {
        /// Every setting of the relay, with its default (`Default`).
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        pub struct RelayConfig {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
        }

        impl Default for RelayConfig {
            fn default() -> Self {
                RelayConfig { $( $key: $default, )+ }
            }
        }

        impl RelayConfig {
            /// Every setting, in the order of the example file.
            pub const SETTINGS: &'static [SettingInfo] = &[
                $( SettingInfo { key: stringify!($key), doc: concat!($($doc, "\n"),+) }, )+
            ];

            /// Sets `key` from its text form (a flag's or variable's value).
            pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
                match key {
                    $( stringify!($key) => {
                        self.$key = value.trim().parse::<$ty>().map_err(|e| ConfigError::BadValue {
                            key: key.to_string(),
                            reason: format!("{value:?}: {e}"),
                        })?;
                    } )+
                    _ => return Err(ConfigError::UnknownKey(key.to_string())),
                }
                Ok(())
            }

            /// The current value of `key` in its text form.
            pub fn get(&self, key: &str) -> Option<String> {
                match key {
                    $( stringify!($key) => Some(self.$key.to_string()), )+
                    _ => None,
                }
            }
        }
    };
}

settings! {
    /// How long a login challenge is accepted, in milliseconds.
    challenge_ttl_ms: i64 = 60_000;
    /// How long a bearer token is accepted, in milliseconds; an open
    /// WebSocket is closed when its token expires.
    token_ttl_ms: i64 = 3_600_000;
    /// Who may register: `open` or `invite` (default: `open` on a loopback
    /// listener, `invite` on any other).
    registration: Registration = Registration::Open;
    /// Open connections in all (TCP, TLS and WebSocket).
    max_connections: usize = 1_024;
    /// Open connections from one peer address (a trusted proxy is exempt).
    max_connections_per_ip: usize = 64;
    /// Time to send a request's head (and finish the TLS handshake), in ms.
    header_read_timeout_ms: u64 = 10_000;
    /// Time to receive a request's body and answer it, in ms.
    request_timeout_ms: u64 = 30_000;
    /// A connection with no bytes either way for this long is closed, in ms.
    idle_timeout_ms: u64 = 60_000;
    /// Largest request head (request line and headers), in bytes.
    header_max_bytes: usize = 16 * 1024;
    /// Largest request body, in bytes (one message's copies for 64
    /// members at the largest ciphertext, in base64, fit).
    body_max_bytes: usize = 12 * 1024 * 1024;
    /// Largest frame or message a client may send on the WebSocket (it
    /// sends none; pings and close frames fit).
    ws_message_max_bytes: usize = 1_024;
    /// Login challenges asked from one address.
    challenges_per_ip: Rate = Rate::new(300, 60_000);
    /// Login challenges asked for one handle from one address (each CLI
    /// command logs in once, so scripts need room; per address, so nobody
    /// can lock a handle out from elsewhere).
    challenges_per_handle: Rate = Rate::new(120, 60_000);
    /// Login attempts from one address.
    logins_per_ip: Rate = Rate::new(300, 60_000);
    /// Login attempts for one handle from one address.
    logins_per_handle: Rate = Rate::new(120, 60_000);
    /// Registrations from one address.
    registrations_per_ip: Rate = Rate::new(60, 3_600_000);
    /// Key claims by one principal.
    claims_per_principal: Rate = Rate::new(600, 3_600_000);
    /// Key claims from one address.
    claims_per_ip: Rate = Rate::new(1_200, 3_600_000);
    /// One-time keys handed out for one target; past it the target's
    /// fallback key is served instead (a drainer cannot cut others off).
    one_time_claims_per_target: Rate = Rate::new(100, 3_600_000);
    /// Posts by one principal.
    posts_per_principal: Rate = Rate::new(1_200, 60_000);
    /// Posts from one address.
    posts_per_ip: Rate = Rate::new(6_000, 60_000);
    /// Channels created by one principal.
    channels_per_principal: Rate = Rate::new(60, 3_600_000);
    /// Channels created from one address.
    channels_per_ip: Rate = Rate::new(120, 3_600_000);
    /// Envelopes waiting in one mailbox.
    mailbox_max_envelopes: u64 = 10_000;
    /// Bytes of ciphertext waiting in one mailbox.
    mailbox_max_bytes: u64 = 256 * 1024 * 1024;
    /// The share of each mailbox (count and bytes) one sender may fill, in
    /// percent: one member's junk cannot block every other sender.
    sender_share_percent: u64 = 25;
    /// An envelope not fetched and acknowledged within this long is
    /// deleted, in ms (default 30 days).
    unfetched_retention_ms: i64 = 30 * 86_400_000;
    /// Bytes one principal may have stored at the relay: its envelopes
    /// waiting in others' mailboxes and its escrow offers.
    principal_storage_bytes: u64 = 512 * 1024 * 1024;
    /// Largest escrow offer (all its sealed copies), in bytes.
    offer_max_bytes: u64 = 1024 * 1024;
    /// Longest escrow deadline from now, in ms (default 30 days).
    exchange_deadline_max_ms: i64 = 30 * 86_400_000;
    /// Members of one channel (at most the protocol's 64).
    members_per_channel: usize = 64;
    /// Free space kept on the database's file system, in bytes: below it,
    /// posts are refused (`507 storage_full`) while login, fetch and ack
    /// go on, so members can drain their mailboxes.
    disk_reserve_bytes: u64 = 64 * 1024 * 1024;
    /// Largest size of the database file, in bytes (0: only the disk
    /// bounds it); the reserve applies below it too.
    db_max_bytes: u64 = 0;
}

impl RelayConfig {
    /// Applies every key of a TOML document (its values as integers or
    /// strings) and returns the keys it set; an unknown key is refused, so
    /// a typo is not ignored.
    pub fn merge_toml(&mut self, text: &str) -> Result<Vec<String>, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.message().to_string()))?;
        let mut set = Vec::new();
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(ConfigError::BadValue {
                        key,
                        reason: format!("a {} is neither a number nor a string", other.type_str()),
                    })
                }
            };
            self.set(&key, &text)?;
            set.push(key);
        }
        Ok(set)
    }

    /// A commented TOML file with every setting at its default.
    pub fn example() -> String {
        let defaults = RelayConfig::default();
        let mut out = String::from(
            "# Backchannel relay settings (`backchannel relay serve --config FILE`).\n\
             # Each key is also a flag (--max-connections) and an environment\n\
             # variable (BACKCHANNEL_RELAY_MAX_CONNECTIONS); flags win over\n\
             # variables, variables over this file. Rates are COUNT/UNIT (s, min, h, day).\n",
        );
        for s in Self::SETTINGS {
            out.push('\n');
            for line in s.doc.lines() {
                out.push_str("# ");
                out.push_str(line.trim());
                out.push('\n');
            }
            let value = defaults.get(s.key).unwrap_or_default();
            if s.key == "registration" {
                // Left unset, it follows the listener (invite off loopback).
                out.push_str("# registration = \"invite\"\n");
                continue;
            }
            let numeric = value.bytes().all(|b| b.is_ascii_digit());
            if numeric {
                out.push_str(&format!("{} = {value}\n", s.key));
            } else {
                out.push_str(&format!("{} = \"{value}\"\n", s.key));
            }
        }
        out
    }

    /// Whether these settings are usable, in plain words if not.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::BadValue {
                key: key.into(),
                reason: reason.into(),
            })
        };
        if self.members_per_channel < 2
            || self.members_per_channel > backchannel_protocol::payload::MEMBERS_MAX
        {
            return bad("members_per_channel", "must be 2 to 64");
        }
        if self.sender_share_percent == 0 || self.sender_share_percent > 100 {
            return bad("sender_share_percent", "must be 1 to 100");
        }
        if self.header_max_bytes < 1024 {
            return bad("header_max_bytes", "must be at least 1024");
        }
        if self.token_ttl_ms < 1_000 || self.challenge_ttl_ms < 1_000 {
            return bad("token_ttl_ms", "lifetimes must be at least 1000 ms");
        }
        for (key, ms) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if ms < 100 {
                return bad(key, "must be at least 100 ms");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_round_trip() {
        for s in ["60/min", "5/s", "600/h", "1/day", "7/250ms"] {
            let r: Rate = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert!("60".parse::<Rate>().is_err());
        assert!("x/min".parse::<Rate>().is_err());
        assert!("1/week".parse::<Rate>().is_err());
        assert!("1/0ms".parse::<Rate>().is_err());
    }

    #[test]
    fn the_example_file_parses_back_to_the_defaults() {
        let mut c = RelayConfig::default();
        c.merge_toml(&RelayConfig::example()).unwrap();
        assert_eq!(c, RelayConfig::default());
        assert!(c.check().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_in_words() {
        let mut c = RelayConfig::default();
        let e = c.merge_toml("max_conections = 5").unwrap_err();
        assert!(e.to_string().contains("max_conections"), "{e}");
        let e = c.set("posts_per_ip", "lots").unwrap_err();
        assert!(e.to_string().contains("posts_per_ip"), "{e}");
        assert!(c.merge_toml("max_connections = [1]").is_err());
        c.set("members_per_channel", "65").unwrap();
        assert!(c.check().is_err());
        let mut c = RelayConfig::default();
        c.set("idle_timeout_ms", "0").unwrap();
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("idle_timeout_ms"));
    }

    /// The operator reads the defaults in docs/operating.md: a changed
    /// default or description must change the table too.
    #[test]
    fn the_operating_guide_lists_every_setting_at_its_default() {
        let guide = include_str!("../../../docs/operating.md");
        let defaults = RelayConfig::default();
        let rows: Vec<&str> = guide.lines().filter(|l| l.starts_with("| `")).collect();
        let mut missing = Vec::new();
        for s in RelayConfig::SETTINGS {
            let value = match s.key {
                "registration" => "open".to_string(),
                key => defaults.get(key).unwrap_or_default(),
            };
            let doc = s.doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
            let row = format!("| `{}` | `{value}` | {doc} |", s.key);
            if !rows.contains(&row.as_str()) {
                missing.push(row);
            }
        }
        assert!(
            missing.is_empty(),
            "docs/operating.md needs these rows:\n{}",
            missing.join("\n")
        );
        assert_eq!(
            rows.len(),
            RelayConfig::SETTINGS.len(),
            "a row for a setting that is gone"
        );
    }

    #[test]
    fn every_setting_has_a_flag_and_a_variable() {
        let s = RelayConfig::SETTINGS
            .iter()
            .find(|s| s.key == "max_connections_per_ip")
            .unwrap();
        assert_eq!(s.flag(), "max-connections-per-ip");
        assert_eq!(s.env(), "BACKCHANNEL_RELAY_MAX_CONNECTIONS_PER_IP");
    }
}
