//! `[alerts]`: the security rules the leader evaluates over the audit stream, and the
//! webhooks their alerts are posted to.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Evaluate the rules at all.
    pub enabled: bool,
    /// The window the counting rules look back over.
    pub window_secs: u64,
    /// Password spraying: distinct accounts failing to log in from one source address.
    pub spraying_accounts: u64,
    /// Credential stuffing: distinct source addresses failing to log in to one account.
    pub stuffing_sources: u64,
    /// Denied requests (401/403) by one logged-in user or one API key.
    pub denied_burst: u64,
    /// An API key used from more distinct source addresses than this within the window (on
    /// one node) and more than `key_sources_factor` times its usual number.
    pub key_sources: u64,
    pub key_sources_factor: f64,
    /// A query returning at least this many rows and more than `large_read_factor` times what
    /// the user's queries usually return.
    pub large_read_rows: u64,
    pub large_read_factor: f64,
    /// Admin actions are expected within these hours, `HH:MM-HH:MM` (UTC plus
    /// `admin_hours_utc_offset_minutes`); empty: at any time.
    pub admin_hours: String,
    pub admin_hours_utc_offset_minutes: i32,
    /// The same rule about the same subject is not raised again within this time.
    pub cooldown_secs: u64,
    /// `[[alerts.webhook]]`: where alerts are POSTed.
    pub webhook: Vec<WebhookSettings>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 600,
            spraying_accounts: 10,
            stuffing_sources: 5,
            denied_burst: 20,
            key_sources: 100,
            key_sources_factor: 5.0,
            large_read_rows: 100_000,
            large_read_factor: 10.0,
            admin_hours: String::new(),
            admin_hours_utc_offset_minutes: 0,
            cooldown_secs: 3600,
            webhook: Vec::new(),
        }
    }
}

/// One webhook: every alert is POSTed to `url` as JSON, with `x-unmogrowp-alert-id` and, when
/// `secret` is set, `x-unmogrowp-signature: sha256=<hex HMAC of the body>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

impl WebhookSettings {
    /// The name its delivery position is kept under: a digest of the URL, so the position
    /// survives restarts and a changed URL starts afresh (from the newest alert).
    pub fn key(&self) -> String {
        use sha2::Digest;
        let d = sha2::Sha256::digest(self.url.as_bytes());
        format!("webhook-{}", &hex::encode(d)[..16])
    }

    /// The URL without credentials or query, for logs.
    pub fn display(&self) -> String {
        let no_query = self.url.split('?').next().unwrap_or("");
        match no_query.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => no_query.to_string(),
        }
    }
}

impl AlertSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.window_secs == 0 {
            return Err("alerts.window_secs must be positive".into());
        }
        self.admin_window()?;
        for w in &self.webhook {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(format!(
                    "alerts.webhook url {} must be http:// or https://",
                    w.display()
                ));
            }
        }
        Ok(())
    }

    /// `admin_hours` as minutes of the (local) day `[from, to)`; `None` for any time. A
    /// window may wrap midnight (`22:00-06:00`).
    pub fn admin_window(&self) -> Result<Option<(u32, u32)>, String> {
        let s = self.admin_hours.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || format!("alerts.admin_hours {s:?}: expected HH:MM-HH:MM");
        let minutes = |t: &str| -> Result<u32, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 24 || m > 59 || h * 60 + m > 24 * 60 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        Ok(Some((minutes(a)?, minutes(b)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_shown_without_credentials_or_query() {
        let w = WebhookSettings {
            url: "https://user:pw@hooks.example.com/x/y?token=abc".into(),
            secret: None,
            timeout_secs: 10,
        };
        assert_eq!(w.display(), "https://hooks.example.com/x/y");
        let other = WebhookSettings {
            url: "https://hooks.example.com/x/y?token=def".into(),
            ..w.clone()
        };
        assert_ne!(w.key(), other.key());
    }

    #[test]
    fn admin_hours_parse_and_may_wrap_midnight() {
        let at = |s: &str| AlertSettings {
            admin_hours: s.into(),
            ..AlertSettings::default()
        };
        assert_eq!(at("").admin_window(), Ok(None));
        assert_eq!(at("08:00-19:30").admin_window(), Ok(Some((480, 1170))));
        assert_eq!(at("22:00-06:00").admin_window(), Ok(Some((1320, 360))));
        assert!(at("8-19").admin_window().is_err());
        assert!(at("25:00-26:00").validate().is_err());
    }
}
