//! Fraud signals over the scanned clicks and installs, reported per source and optionally
//! excluded from attribution:
//!
//! * **Click injection**: an install that follows the last click on the same device by less
//!   than `min_click_to_install_ms` (a real user cannot download and open an app that fast;
//!   malware fires a click when it sees the install start). The click is flagged.
//! * **Abnormal clicks**: a device with more than `max_clicks_per_device_day` clicks, or an IP
//!   with more than `max_clicks_per_ip_day`, within one UTC day. Every click of that
//!   device-day or IP-day is flagged.
//! * **Deny-listed IPs**: clicks and installs whose `ip` falls in a configured list of
//!   addresses or CIDR ranges.
//!
//! With exclusion on, flagged clicks and views are never eligible touchpoints (an injected
//! install then goes to an earlier honest touchpoint, or is organic) and installs from
//! deny-listed IPs are not counted as conversions at all.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::model::DAY_MS;
use super::rules::{Ev, Kind};
use crate::error::{QueryError, Result};

pub(super) const ABNORMAL_DEVICE: u8 = 1;
pub(super) const ABNORMAL_IP: u8 = 2;
pub(super) const DENY_IP: u8 = 4;
/// A click followed too soon by an install on its device.
pub(super) const INJECTED_CLICK: u8 = 8;
/// An install that followed a click too soon.
pub(super) const INJECTED_INSTALL: u8 = 16;

/// The thresholds and the deny list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudRules {
    pub min_click_to_install_ms: i64,
    pub max_clicks_per_device_day: u64,
    pub max_clicks_per_ip_day: u64,
    /// Addresses and CIDR ranges, as given.
    pub deny_ips: Vec<String>,
    /// The conversion type that is an install.
    pub install_type: String,
    #[serde(skip)]
    deny: Vec<IpNet>,
}

impl Default for FraudRules {
    fn default() -> Self {
        Self {
            min_click_to_install_ms: 10_000,
            max_clicks_per_device_day: 50,
            max_clicks_per_ip_day: 200,
            deny_ips: Vec::new(),
            install_type: "install".into(),
            deny: Vec::new(),
        }
    }
}

impl FraudRules {
    /// Adds addresses or CIDR ranges (`203.0.113.7`, `198.51.100.0/24`, `2001:db8::/32`) to
    /// the deny list.
    pub fn deny(&mut self, entries: impl IntoIterator<Item = impl AsRef<str>>) -> Result<()> {
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let net = match e.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => IpNet::from(e.parse::<IpAddr>().map_err(|_| {
                    QueryError::InvalidQuery(format!("{e:?} is not an IP address or CIDR range"))
                })?),
            };
            self.deny.push(net);
            self.deny_ips.push(e.to_string());
        }
        Ok(())
    }

    pub fn is_denied(&self, ip: &str) -> bool {
        !self.deny.is_empty()
            && ip
                .parse::<IpAddr>()
                .is_ok_and(|a| self.deny.iter().any(|n| n.contains(&a)))
    }

    pub fn validate(&self) -> Result<()> {
        if self.min_click_to_install_ms < 0
            || self.max_clicks_per_device_day == 0
            || self.max_clicks_per_ip_day == 0
        {
            return Err(QueryError::InvalidQuery(
                "fraud thresholds must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Device and IP of one scanned event (interned; `u32::MAX` = none), and whether the IP is
/// deny-listed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub(super) device: u32,
    pub(super) ip: u32,
    pub(super) denied: bool,
}

/// Flags per event (parallel to the events), and for each install the click it followed.
pub(super) struct Flagged {
    pub(super) flags: Vec<u8>,
    pub(super) last_click: HashMap<usize, usize>,
}

/// Flags `events` (any order) by the rules. `install` is the conversion index of installs.
pub(super) fn flag(
    events: &[(u32, Ev)],
    origins: &[Origin],
    rules: &FraudRules,
    install: Option<u16>,
) -> Flagged {
    const NONE: u32 = u32::MAX;
    let mut flags = vec![0u8; events.len()];
    let mut per_device: HashMap<(u32, i64), u64> = HashMap::new();
    let mut per_ip: HashMap<(u32, i64), u64> = HashMap::new();
    for ((_, e), o) in events.iter().zip(origins) {
        if e.kind == Kind::Click {
            let day = e.ts.div_euclid(DAY_MS);
            *per_device.entry((o.device, day)).or_default() += 1;
            if o.ip != NONE {
                *per_ip.entry((o.ip, day)).or_default() += 1;
            }
        }
    }
    for (i, ((_, e), o)) in events.iter().zip(origins).enumerate() {
        if o.denied {
            flags[i] |= DENY_IP;
        }
        if e.kind == Kind::Click {
            let day = e.ts.div_euclid(DAY_MS);
            if per_device[&(o.device, day)] > rules.max_clicks_per_device_day {
                flags[i] |= ABNORMAL_DEVICE;
            }
            if o.ip != NONE && per_ip[&(o.ip, day)] > rules.max_clicks_per_ip_day {
                flags[i] |= ABNORMAL_IP;
            }
        }
    }
    let mut by_device: Vec<usize> = (0..events.len()).collect();
    by_device.sort_unstable_by_key(|&i| (origins[i].device, events[i].1.ts, events[i].1.order));
    let mut last_click = HashMap::new();
    let mut current: Option<(u32, usize)> = None;
    for &i in &by_device {
        let device = origins[i].device;
        if current.is_some_and(|(d, _)| d != device) {
            current = None;
        }
        match events[i].1.kind {
            Kind::Click => current = Some((device, i)),
            Kind::Conversion(t) if Some(t) == install => {
                if let Some((_, c)) = current {
                    last_click.insert(i, c);
                    if events[i].1.ts - events[c].1.ts < rules.min_click_to_install_ms {
                        flags[c] |= INJECTED_CLICK;
                        flags[i] |= INJECTED_INSTALL;
                    }
                }
            }
            _ => {}
        }
    }
    Flagged { flags, last_click }
}

/// Whether a touchpoint with these flags is excluded from attribution.
pub(super) fn excluded_touchpoint(flags: u8) -> bool {
    flags & (ABNORMAL_DEVICE | ABNORMAL_IP | DENY_IP | INJECTED_CLICK) != 0
}

/// Signals of one source (the click's `attribution_source`; an install's source is that of
/// the last click on its device within the click window, none when there is no such click).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FraudRow {
    pub source: Option<String>,
    pub clicks: u64,
    pub installs: u64,
    /// Installs less than `min_click_to_install_ms` after their click.
    pub click_injection: u64,
    /// Clicks of device-days over `max_clicks_per_device_day`.
    pub abnormal_device_clicks: u64,
    /// Clicks of IP-days over `max_clicks_per_ip_day`.
    pub abnormal_ip_clicks: u64,
    pub deny_listed_clicks: u64,
    pub deny_listed_installs: u64,
    /// Share of the source's clicks flagged by any rule (null without clicks).
    pub flagged_click_rate: Option<f64>,
}

/// The answer of `GET /api/analytics/fraud`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudReport {
    pub rules: FraudRules,
    /// Sources by flagged clicks and installs, most first.
    pub rows: Vec<FraudRow>,
    /// Distinct devices and IPs with at least one abnormal day in the range.
    pub flagged_devices: u64,
    pub flagged_ips: u64,
    pub events_scanned: u64,
}

/// Adds the flagged events up per source. `source_of(i)` is the interned source of click `i`
/// (or `None`), `name` turns it back into text; only events with `in_range(ts)` count.
#[allow(clippy::too_many_arguments)]
pub(super) fn report(
    events: &[(u32, Ev)],
    origins: &[Origin],
    flagged: &Flagged,
    install: Option<u16>,
    click_window_ms: i64,
    in_range: impl Fn(i64) -> bool,
    source_of: impl Fn(usize) -> Option<u32>,
    name: impl Fn(u32) -> Option<String>,
    rules: &FraudRules,
) -> FraudReport {
    let mut rows: BTreeMap<Option<u32>, FraudRow> = BTreeMap::new();
    let mut flagged_clicks: BTreeMap<Option<u32>, u64> = BTreeMap::new();
    let (mut devices, mut ips) = (HashSet::new(), HashSet::new());
    for (i, (_, e)) in events.iter().enumerate() {
        if !in_range(e.ts) {
            continue;
        }
        let f = flagged.flags[i];
        match e.kind {
            Kind::Click => {
                let src = source_of(i);
                let r = rows.entry(src).or_default();
                r.clicks += 1;
                r.abnormal_device_clicks += u64::from(f & ABNORMAL_DEVICE != 0);
                r.abnormal_ip_clicks += u64::from(f & ABNORMAL_IP != 0);
                r.deny_listed_clicks += u64::from(f & DENY_IP != 0);
                if f & ABNORMAL_DEVICE != 0 {
                    devices.insert(origins[i].device);
                }
                if f & ABNORMAL_IP != 0 {
                    ips.insert(origins[i].ip);
                }
                if excluded_touchpoint(f) {
                    *flagged_clicks.entry(src).or_default() += 1;
                }
            }
            Kind::Conversion(t) if Some(t) == install => {
                let src = flagged
                    .last_click
                    .get(&i)
                    .filter(|&&c| e.ts - events[c].1.ts <= click_window_ms)
                    .and_then(|&c| source_of(c));
                let r = rows.entry(src).or_default();
                r.installs += 1;
                r.click_injection += u64::from(f & INJECTED_INSTALL != 0);
                r.deny_listed_installs += u64::from(f & DENY_IP != 0);
            }
            _ => {}
        }
    }
    let mut rows: Vec<FraudRow> = rows
        .into_iter()
        .map(|(src, mut r)| {
            r.source = src.and_then(&name);
            let flagged = flagged_clicks.get(&src).copied().unwrap_or(0);
            r.flagged_click_rate = (r.clicks > 0).then(|| flagged as f64 / r.clicks as f64);
            r
        })
        .collect();
    let weight = |r: &FraudRow| {
        r.click_injection
            + r.abnormal_device_clicks
            + r.abnormal_ip_clicks
            + r.deny_listed_clicks
            + r.deny_listed_installs
    };
    rows.sort_by(|a, b| {
        weight(b)
            .cmp(&weight(a))
            .then_with(|| b.clicks.cmp(&a.clicks))
            .then_with(|| a.source.cmp(&b.source))
    });
    FraudReport {
        rules: rules.clone(),
        rows,
        flagged_devices: devices.len() as u64,
        flagged_ips: ips.len() as u64,
        events_scanned: events.len() as u64,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ev(ts: i64, order: u64, kind: Kind) -> (u32, Ev) {
        (
            0,
            Ev {
                ts,
                order,
                kind,
                channel: 0,
                revenue: 0.0,
                excluded: false,
            },
        )
    }

    fn origin(device: u32, ip: u32) -> Origin {
        Origin {
            device,
            ip,
            denied: false,
        }
    }

    #[test]
    fn deny_list_takes_addresses_and_ranges_and_refuses_garbage() {
        let mut r = FraudRules::default();
        r.deny(["203.0.113.0/24", " 198.51.100.7 ", "2001:db8::/32", ""])
            .unwrap();
        assert!(r.is_denied("203.0.113.200"));
        assert!(r.is_denied("198.51.100.7"));
        assert!(!r.is_denied("198.51.100.8"));
        assert!(r.is_denied("2001:db8::1"));
        assert!(!r.is_denied("not an ip"));
        assert_eq!(r.deny_ips.len(), 3);
        assert!(r.deny(["300.1.1.1"]).is_err());
    }

    #[test]
    fn injection_is_strictly_shorter_than_the_threshold_and_per_device() {
        let rules = FraudRules::default(); // 10 s
        let install = Some(0);
        let events = [
            ev(0, 1, Kind::Click),              // device 1
            ev(10_000, 2, Kind::Conversion(0)), // device 1: exactly 10 s: honest
            ev(20_000, 3, Kind::Click),         // device 2
            ev(29_999, 4, Kind::Conversion(0)), // device 2: 9.999 s: injected
            ev(29_999, 5, Kind::Conversion(0)), // device 3: no click on its device
        ];
        let origins = [
            origin(1, 9),
            origin(1, 9),
            origin(2, 9),
            origin(2, 9),
            origin(3, 9),
        ];
        let f = flag(&events, &origins, &rules, install);
        assert_eq!(f.flags, vec![0, 0, INJECTED_CLICK, INJECTED_INSTALL, 0]);
        assert_eq!(f.last_click.get(&1), Some(&0));
        assert_eq!(f.last_click.get(&4), None);
    }
}
