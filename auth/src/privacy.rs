//! Per-app data protection (issue 29): what ingest does to personal identifiers before an
//! event reaches the log, with the app's own secrets.
//!
//! - `ip`: `keep`, `truncate` (IPv4 to its /24, IPv6 to its /48: the host part zeroed) or
//!   `drop`.
//! - `user_id`: `keep` or `hash`: HMAC-SHA-256 under the app's hash key, hex — the same user
//!   always maps to the same value, so uniques, funnels and retention still count people.
//! - `device_id`: `keep`, `hash` (as `user_id`) or `encrypt`: AES-256-GCM-SIV under the app's
//!   encryption key with a fixed nonce, so it is deterministic (the same device, the same
//!   value: still countable) and an admin can reveal it ([`AppPrivacy::reveal_device_id`]).
//!   Written as `enc1:` + base64url(ciphertext ‖ tag).
//!
//! The secrets are decided by the node that proposes the first privacy settings of an app and
//! travel in that log entry; they live in the auth store beside the settings and never appear
//! in an API answer. They are never rotated: a new key would split every user in two.

use aes_gcm_siv::aead::{Aead, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Days of events an app keeps when its settings do not say (the seed: two years).
pub const DEFAULT_RETENTION_DAYS: u32 = 730;

/// What ingest does with an event's IP address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    #[default]
    Keep,
    Truncate,
    Drop,
}

/// What ingest does with an event's `user_id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdMode {
    #[default]
    Keep,
    Hash,
}

/// What ingest does with an event's `device_id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceIdMode {
    #[default]
    Keep,
    Hash,
    Encrypt,
}

/// An app's data-protection settings, as `PATCH /api/apps/{id}` `"privacy"` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privacy {
    pub retention_days: u32,
    pub ip: IpMode,
    pub user_id: UserIdMode,
    pub device_id: DeviceIdMode,
    /// Events without a `consent` object are rejected (each on its own).
    pub require_consent: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
            ip: IpMode::Keep,
            user_id: UserIdMode::Keep,
            device_id: DeviceIdMode::Keep,
            require_consent: false,
        }
    }
}

/// One UTC day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The start of the UTC day `days` before the day of `now_ms`: what a retention of `days`
/// keeps starts there (today and the `days` days before it). Events and the audit log alike.
pub fn day_floor(now_ms: i64, days: u32) -> i64 {
    (now_ms.div_euclid(DAY_MS) - i64::from(days)) * DAY_MS
}

impl Privacy {
    /// The retention floor at `now_ms`: events before it are not kept ([`day_floor`]).
    pub fn retention_floor(&self, now_ms: i64) -> i64 {
        day_floor(now_ms, self.retention_days)
    }

    /// Whether ingest changes anything of an event under these settings.
    pub fn transforms(&self) -> bool {
        self.ip != IpMode::Keep
            || self.user_id != UserIdMode::Keep
            || self.device_id != DeviceIdMode::Keep
    }
}

/// The settings and the app's secrets, as stored (`v/{app id}`) and replicated. (`Debug`
/// leaves the secrets out.)
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPrivacy {
    pub settings: Privacy,
    /// HMAC key of `hash` (hex, 32 bytes).
    pub hash_key: String,
    /// AES-256 key of `encrypt` (hex, 32 bytes).
    pub encrypt_key: String,
}

impl std::fmt::Debug for AppPrivacy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppPrivacy")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A device id that `reveal` cannot turn back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevealError {
    #[error("not an encrypted device id (enc1:…)")]
    NotEncrypted,
    #[error("not encrypted with this app's key, or damaged")]
    WrongKey,
}

/// Marks a device id encrypted by [`AppPrivacy::encrypt_device_id`].
const ENCRYPTED_PREFIX: &str = "enc1:";

fn fresh_key() -> String {
    let mut k = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut k);
    hex::encode(k)
}

impl AppPrivacy {
    /// `settings` with new random secrets (the proposing node calls this once per app).
    pub fn generate(settings: Privacy) -> Self {
        Self {
            settings,
            hash_key: fresh_key(),
            encrypt_key: fresh_key(),
        }
    }

    fn key(hex_key: &str) -> [u8; 32] {
        let mut k = [0u8; 32];
        // Keys are written by `generate` only; a damaged one hashes under zeros rather than
        // panicking, and `reveal` then fails.
        if let Ok(b) = hex::decode(hex_key) {
            if b.len() == 32 {
                k.copy_from_slice(&b);
            }
        }
        k
    }

    /// The transforms with their keys set up once (ingest uses one per request).
    pub fn keyed(&self) -> Keyed {
        Keyed {
            settings: self.settings,
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&Self::key(&self.hash_key))
                .expect("HMAC takes a key of any length"),
            cipher: Aes256GcmSiv::new_from_slice(&Self::key(&self.encrypt_key))
                .expect("AES-256 takes a 32-byte key"),
        }
    }
}

/// An app's transforms, keys expanded ([`AppPrivacy::keyed`]).
#[derive(Clone)]
pub struct Keyed {
    pub settings: Privacy,
    mac: Hmac<Sha256>,
    cipher: Aes256GcmSiv,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Keyed {
    /// Keyed HMAC-SHA-256 of `value` in the domain `what` (`user_id`, `device_id`), hex.
    pub fn hash(&self, what: &str, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(what.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The device id encrypted deterministically: `enc1:` + base64url(ciphertext ‖ tag).
    pub fn encrypt_device_id(&self, device_id: &str) -> String {
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&[0u8; 12]), device_id.as_bytes())
            .expect("AES-GCM-SIV encrypts any message below 64 GiB");
        format!(
            "{ENCRYPTED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The device id an [`encrypt_device_id`](Self::encrypt_device_id) value was made from.
    pub fn reveal_device_id(&self, stored: &str) -> Result<String, RevealError> {
        let b64 = stored
            .strip_prefix(ENCRYPTED_PREFIX)
            .ok_or(RevealError::NotEncrypted)?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| RevealError::NotEncrypted)?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&[0u8; 12]), sealed.as_ref())
            .map_err(|_| RevealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| RevealError::WrongKey)
    }

    /// `user_id` as stored under these settings.
    pub fn user_id(&self, user_id: &str) -> String {
        match self.settings.user_id {
            UserIdMode::Keep => user_id.to_string(),
            UserIdMode::Hash => self.hash("user_id", user_id),
        }
    }

    /// `device_id` as stored under these settings.
    pub fn device_id(&self, device_id: &str) -> String {
        match self.settings.device_id {
            DeviceIdMode::Keep => device_id.to_string(),
            DeviceIdMode::Hash => self.hash("device_id", device_id),
            DeviceIdMode::Encrypt => self.encrypt_device_id(device_id),
        }
    }

    /// An IP address as stored under these settings (`None`: dropped). Anything that is not
    /// an address is dropped too rather than kept in clear.
    pub fn ip(&self, ip: &str) -> Option<String> {
        match self.settings.ip {
            IpMode::Keep => Some(ip.to_string()),
            IpMode::Drop => None,
            IpMode::Truncate => truncate_ip(ip),
        }
    }
}

/// IPv4 to its /24, IPv6 to its /48 (host bits zeroed); `None` if `ip` is not an address.
pub fn truncate_ip(ip: &str) -> Option<String> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    Some(match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Ipv4Addr::new(a, b, c, 0).to_string()
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(settings: Privacy) -> Keyed {
        AppPrivacy::generate(settings).keyed()
    }

    #[test]
    fn the_retention_floor_is_a_day_start() {
        let p = Privacy {
            retention_days: 2,
            ..Privacy::default()
        };
        // 2026-12-07 15:00 UTC: today and the two days before are kept.
        let now = 1_796_655_600_000;
        assert_eq!(p.retention_floor(now), 1_796_428_800_000); // 2026-12-05 00:00
        assert_eq!(Privacy::default().retention_floor(now) % DAY_MS, 0);
    }

    #[test]
    fn truncation_keeps_the_network_only() {
        assert_eq!(truncate_ip("203.0.113.77").as_deref(), Some("203.0.113.0"));
        assert_eq!(
            truncate_ip("2001:db8:abcd:12:3456::9").as_deref(),
            Some("2001:db8:abcd::")
        );
        assert_eq!(truncate_ip("::ffff:10.1.2.3").as_deref(), Some("::"));
        assert_eq!(truncate_ip("not an ip"), None);
    }

    #[test]
    fn hashes_are_keyed_stable_and_separated_by_field() {
        let p = with(Privacy {
            user_id: UserIdMode::Hash,
            device_id: DeviceIdMode::Hash,
            ..Privacy::default()
        });
        let u = p.user_id("alice@example.com");
        assert_eq!(u.len(), 64);
        assert_eq!(u, p.user_id("alice@example.com"), "stable: still countable");
        assert_ne!(u, p.user_id("bob@example.com"));
        assert_ne!(u, p.device_id("alice@example.com"), "fields hash apart");
        let other_app = with(p.settings);
        assert_ne!(u, other_app.user_id("alice@example.com"), "keyed per app");
    }

    #[test]
    fn encrypted_device_ids_are_deterministic_and_revealed_only_with_the_key() {
        let p = with(Privacy {
            device_id: DeviceIdMode::Encrypt,
            ..Privacy::default()
        });
        let raw = "9F1B6C7E-1D2A-4C3B-8A9D-0E1F2A3B4C5D";
        let enc = p.device_id(raw);
        assert!(enc.starts_with("enc1:"), "{enc}");
        assert!(!enc.contains(raw));
        assert_eq!(enc, p.device_id(raw), "deterministic: still countable");
        assert_ne!(enc, p.device_id("another device"));
        assert_eq!(p.reveal_device_id(&enc).as_deref(), Ok(raw));
        let other = with(p.settings);
        assert_eq!(other.reveal_device_id(&enc), Err(RevealError::WrongKey));
        assert_eq!(p.reveal_device_id(raw), Err(RevealError::NotEncrypted));
        let mut damaged = enc.clone();
        damaged.pop();
        damaged.push(if enc.ends_with('A') { 'B' } else { 'A' });
        assert!(p.reveal_device_id(&damaged).is_err());
    }

    #[test]
    fn keep_changes_nothing_and_drop_drops() {
        let keep = with(Privacy::default());
        assert!(!keep.settings.transforms());
        assert_eq!(keep.user_id("u"), "u");
        assert_eq!(keep.device_id("d"), "d");
        assert_eq!(keep.ip("203.0.113.77").as_deref(), Some("203.0.113.77"));
        let drop = with(Privacy {
            ip: IpMode::Drop,
            ..Privacy::default()
        });
        assert!(drop.settings.transforms());
        assert_eq!(drop.ip("203.0.113.77"), None);
    }
}
