//! An app's data protection at ingest (issue 29): the `consent` object of an event, and the
//! transform of its identifiers, applied while the event is validated — before it is encoded
//! for the log, so no copy of a raw value exists anywhere after (log, segments, snapshots,
//! backups, mirrors).

use serde_json::Value;

use auth::privacy::Keyed;
use engine::Event;

/// `event_data` keys the consent is kept under (queryable like any property).
pub(crate) const CONSENT_VERSION: &str = "$consent_version";
pub(crate) const CONSENT_CATEGORIES: &str = "$consent_categories";

const MAX_CONSENT_CATEGORIES: usize = 32;
const MAX_CONSENT_TEXT: usize = 64;

/// An event's `"consent": {"version", "categories": [...]}` as `event_data` pairs (none when
/// absent; the categories as a JSON array).
pub(crate) fn consent(v: Option<Value>) -> Result<Vec<(String, String)>, String> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err("consent: must be an object {\"version\", \"categories\": [...]}".into())
        }
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["version", "categories"].contains(&k.as_str()))
    {
        return Err(format!(
            "consent.{k}: unknown field (version and categories only)"
        ));
    }
    let version = match obj.get("version") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CONSENT_TEXT => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(format!("consent.version: 1-{MAX_CONSENT_TEXT} characters")),
    };
    let categories = match obj.get("categories") {
        Some(Value::Array(a)) if a.len() <= MAX_CONSENT_CATEGORIES => a
            .iter()
            .map(|c| match c {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_CONSENT_TEXT => Ok(s.clone()),
                _ => Err(format!(
                    "consent.categories: strings of 1-{MAX_CONSENT_TEXT} characters"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(format!(
                "consent.categories: an array of at most {MAX_CONSENT_CATEGORIES} strings"
            ))
        }
    };
    Ok(vec![
        (CONSENT_VERSION.to_string(), version),
        (
            CONSENT_CATEGORIES.to_string(),
            serde_json::to_string(&categories).unwrap_or_default(),
        ),
    ])
}

/// Replaces the event's IP address, user id and device id as the app's settings say.
pub(crate) fn protect(e: &mut Event, p: &Keyed) {
    if !p.settings.transforms() {
        return;
    }
    e.ip = e.ip.take().and_then(|ip| p.ip(&ip));
    e.user_id = e.user_id.take().map(|u| p.user_id(&u));
    e.device_id = p.device_id(&e.device_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::privacy::{DeviceIdMode, IpMode, Privacy, UserIdMode};
    use serde_json::json;

    #[test]
    fn consent_is_kept_as_properties_and_checked() {
        assert_eq!(consent(None), Ok(vec![]));
        let pairs = consent(Some(
            json!({"version": "2024-05", "categories": ["analytics", "ads"]}),
        ))
        .expect("valid");
        assert_eq!(
            pairs,
            vec![
                (CONSENT_VERSION.into(), "2024-05".into()),
                (CONSENT_CATEGORIES.into(), r#"["analytics","ads"]"#.into())
            ]
        );
        for bad in [
            json!("yes"),
            json!({"version": "1"}),
            json!({"version": "", "categories": []}),
            json!({"version": "1", "categories": [1]}),
            json!({"version": "1", "categories": [], "extra": true}),
        ] {
            assert!(consent(Some(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers_are_replaced_before_encoding() {
        let p = auth::AppPrivacy::generate(Privacy {
            ip: IpMode::Truncate,
            user_id: UserIdMode::Hash,
            device_id: DeviceIdMode::Encrypt,
            ..Privacy::default()
        })
        .keyed();
        let mut e = Event {
            timestamp_ms: 0,
            app_id: "a".into(),
            event_type: "install".into(),
            user_id: Some("alice@example.com".into()),
            session_id: None,
            device_id: "IDFA-1234".into(),
            platform: "ios".into(),
            app_version: None,
            attribution: Default::default(),
            event_data: vec![],
            revenue: None,
            currency: None,
            ip: Some("203.0.113.77".into()),
            user_agent: None,
            received_at_ms: 0,
            event_id: None,
        };
        protect(&mut e, &p);
        assert_eq!(e.ip.as_deref(), Some("203.0.113.0"));
        assert_eq!(e.user_id, Some(p.hash("user_id", "alice@example.com")));
        assert_eq!(p.reveal_device_id(&e.device_id).as_deref(), Ok("IDFA-1234"));
    }
}
