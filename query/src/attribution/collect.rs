//! From scanned events to a [`Report`]: strings are interned as the batches arrive, devices
//! are joined into identities through the `user_id`s seen on them (union-find), each
//! identity's history is run through [`rules::attribute`], and the credit is added up per
//! channel.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringViewArray};
use arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMillisecondType, UInt64Type};

use super::fraud::{self, FraudReport, Origin};
use super::rules::{self, Ev, Kind};
use super::{AttributionParams, ChannelRow, ExcludedFraud, Report, Unattributed};
use crate::error::{QueryError, Result};

/// The columns a scan for attribution must deliver, in this order.
pub(super) const COLUMNS: [&str; 10] = [
    "timestamp",
    "log_index",
    "device_id",
    "user_id",
    "event_type",
    "attribution_campaign",
    "attribution_source",
    "attribution_medium",
    "revenue",
    "ip",
];

const NULL: u32 = u32::MAX;

#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return NULL };
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn name(&self, id: u32) -> Option<String> {
        (id != NULL).then(|| self.names[id as usize].to_string())
    }
}

/// Union-find over identity nodes (devices and users).
#[derive(Default)]
struct Identities {
    parent: Vec<u32>,
    devices: HashMap<Box<str>, u32>,
    users: HashMap<Box<str>, u32>,
}

impl Identities {
    fn node(map: &mut HashMap<Box<str>, u32>, parent: &mut Vec<u32>, key: &str) -> u32 {
        if let Some(&n) = map.get(key) {
            return n;
        }
        let n = parent.len() as u32;
        parent.push(n);
        map.insert(key.into(), n);
        n
    }

    fn find(&mut self, mut n: u32) -> u32 {
        while self.parent[n as usize] != n {
            let up = self.parent[self.parent[n as usize] as usize];
            self.parent[n as usize] = up;
            n = up;
        }
        n
    }

    /// The node of `device`, joined with `user`'s node when the user is known.
    fn of(&mut self, device: &str, user: Option<&str>) -> u32 {
        let d = Self::node(&mut self.devices, &mut self.parent, device);
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            let u = Self::node(&mut self.users, &mut self.parent, u);
            let (a, b) = (self.find(d), self.find(u));
            if a != b {
                // The smaller id becomes the root: deterministic whatever the batch order.
                let (root, child) = if a < b { (a, b) } else { (b, a) };
                self.parent[child as usize] = root;
            }
        }
        d
    }
}

#[derive(Default, Clone)]
struct Tally {
    conversions: f64,
    revenue: f64,
    clicks: u64,
    impressions: u64,
    by_type: Vec<f64>,
}

pub struct Collector {
    params: AttributionParams,
    kinds: HashMap<String, Kind>,
    identities: Identities,
    fields: Interner,
    channels: HashMap<(u32, u32, u32), u32>,
    channel_keys: Vec<(u32, u32, u32)>,
    /// (identity node, event).
    events: Vec<(u32, Ev)>,
    tallies: Vec<Tally>,
    /// Device and IP of each event, kept when fraud rules are needed.
    origins: Option<Vec<Origin>>,
    denied: HashMap<u32, bool>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Execution(format!("attribution scan without {name}")))
}

fn strings(batch: &RecordBatch, name: &str) -> Result<StringViewArray> {
    let c = column(batch, name)?;
    let c = if c.data_type() == &DataType::Utf8View {
        c.clone()
    } else {
        arrow::compute::cast(c, &DataType::Utf8View)?
    };
    Ok(c.as_string_view().clone())
}

fn opt(a: &StringViewArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

impl Collector {
    pub fn new(params: AttributionParams) -> Self {
        let exclude = params.exclude_fraud;
        let mut kinds = HashMap::new();
        for (i, t) in params.conversion_types.iter().enumerate() {
            kinds.insert(t.clone(), Kind::Conversion(i as u16));
        }
        for t in &params.click_types {
            kinds.insert(t.clone(), Kind::Click);
        }
        for t in &params.view_types {
            kinds.insert(t.clone(), Kind::View);
        }
        Self {
            params,
            kinds,
            identities: Identities::default(),
            fields: Interner::default(),
            channels: HashMap::new(),
            channel_keys: Vec::new(),
            events: Vec::new(),
            tallies: Vec::new(),
            origins: None,
            denied: HashMap::new(),
        }
        .track_origins(exclude)
    }

    /// A collector that also keeps what the fraud rules need, for [`Collector::fraud_report`].
    pub fn for_fraud(params: AttributionParams) -> Self {
        Self::new(params).track_origins(true)
    }

    fn track_origins(mut self, on: bool) -> Self {
        if on && self.origins.is_none() {
            self.origins = Some(Vec::new());
        }
        self
    }

    pub fn params(&self) -> &AttributionParams {
        &self.params
    }

    fn channel(&mut self, key: (u32, u32, u32)) -> u32 {
        if let Some(&c) = self.channels.get(&key) {
            return c;
        }
        let c = self.channel_keys.len() as u32;
        self.channel_keys.push(key);
        self.channels.insert(key, c);
        self.tallies.push(Tally {
            by_type: vec![0.0; self.params.conversion_types.len()],
            ..Tally::default()
        });
        c
    }

    /// Takes one batch of scanned events (columns [`COLUMNS`], any order, other app's or
    /// event type's rows ignored by the caller's filter).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let ts_col = column(batch, "timestamp")?;
        let ts = match ts_col.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                ts_col.as_primitive::<TimestampMillisecondType>().clone()
            }
            t => {
                return Err(QueryError::Execution(format!(
                    "attribution scan: timestamp is {t}"
                )))
            }
        };
        let order = column(batch, "log_index")?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| QueryError::Execution("attribution scan: log_index type".into()))?
            .clone();
        let revenue = column(batch, "revenue")?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| QueryError::Execution("attribution scan: revenue type".into()))?
            .clone();
        let device = strings(batch, "device_id")?;
        let user = strings(batch, "user_id")?;
        let ty = strings(batch, "event_type")?;
        let campaign = strings(batch, "attribution_campaign")?;
        let source = strings(batch, "attribution_source")?;
        let medium = strings(batch, "attribution_medium")?;
        // Needed by the fraud rules only; batches built by hand may leave it out.
        let ip = match batch.column_by_name("ip") {
            Some(_) => Some(strings(batch, "ip")?),
            None => None,
        };
        let (from, to) = (self.params.from_ms, self.params.to_ms);
        for i in 0..batch.num_rows() {
            let Some(&kind) = self.kinds.get(ty.value(i)) else {
                continue;
            };
            let t = ts.value(i);
            let node = self.identities.of(device.value(i), opt(&user, i));
            if self.origins.is_some() {
                let addr = ip.as_ref().and_then(|a| opt(a, i));
                let ip_id = self.fields.id(addr);
                let denied = match self.denied.get(&ip_id) {
                    Some(&d) => d,
                    None => {
                        let d = addr.is_some_and(|a| self.params.fraud.is_denied(a));
                        self.denied.insert(ip_id, d);
                        d
                    }
                };
                if let Some(o) = self.origins.as_mut() {
                    o.push(Origin {
                        device: node,
                        ip: ip_id,
                        denied,
                    });
                }
            }
            let channel = match kind {
                Kind::Conversion(_) => NULL,
                Kind::Click | Kind::View => {
                    let key = (
                        self.fields.id(opt(&campaign, i)),
                        self.fields.id(opt(&source, i)),
                        self.fields.id(opt(&medium, i)),
                    );
                    let c = self.channel(key);
                    if (from..to).contains(&t) {
                        let tally = &mut self.tallies[c as usize];
                        match kind {
                            Kind::Click => tally.clicks += 1,
                            _ => tally.impressions += 1,
                        }
                    }
                    c
                }
            };
            self.events.push((
                node,
                Ev {
                    ts: t,
                    order: order.value(i),
                    kind,
                    channel,
                    revenue: if revenue.is_valid(i) {
                        revenue.value(i)
                    } else {
                        0.0
                    },
                    excluded: false,
                },
            ));
        }
        Ok(())
    }

    /// Marks the touchpoints `is_fraud` says are fraudulent as not eligible.
    pub fn exclude(&mut self, mut is_fraud: impl FnMut(&Ev) -> bool) {
        for (_, e) in &mut self.events {
            if !matches!(e.kind, Kind::Conversion(_)) && is_fraud(e) {
                e.excluded = true;
            }
        }
    }

    fn install_index(&self) -> Option<u16> {
        self.params
            .conversion_types
            .iter()
            .position(|t| *t == self.params.fraud.install_type)
            .map(|i| i as u16)
    }

    /// The fraud signals of the collected events, per source.
    pub fn fraud_report(self) -> FraudReport {
        let origins = self.origins.as_deref().unwrap_or_default();
        let install = self.install_index();
        let flagged = fraud::flag(&self.events, origins, &self.params.fraud, install);
        let (from, to) = (self.params.from_ms, self.params.to_ms);
        let source_of = |i: usize| {
            let c = self.events[i].1.channel;
            let s = self.channel_keys.get(c as usize)?.1;
            (s != NULL).then_some(s)
        };
        fraud::report(
            &self.events,
            origins,
            &flagged,
            install,
            self.params.windows.click_ms,
            |t| (from..to).contains(&t),
            source_of,
            |s| self.fields.name(s),
            &self.params.fraud,
        )
    }

    /// Excludes what the fraud rules flag: touchpoints lose eligibility, installs from
    /// deny-listed IPs are dropped (and counted).
    fn exclude_fraud(&mut self) -> ExcludedFraud {
        let mut out = ExcludedFraud::default();
        let Some(origins) = self.origins.take() else {
            return out;
        };
        let install = self.install_index();
        let flagged = fraud::flag(&self.events, &origins, &self.params.fraud, install);
        let (from, to) = (self.params.from_ms, self.params.to_ms);
        let mut keep = Vec::with_capacity(self.events.len());
        for (i, (node, mut e)) in self.events.drain(..).enumerate() {
            let f = flagged.flags[i];
            match e.kind {
                Kind::Conversion(t) if Some(t) == install && f & fraud::DENY_IP != 0 => {
                    if (from..to).contains(&e.ts) {
                        out.conversions += 1;
                        out.revenue += e.revenue;
                    }
                    continue;
                }
                Kind::Click | Kind::View if fraud::excluded_touchpoint(f) => {
                    e.excluded = true;
                    out.touchpoints += 1;
                }
                _ => {}
            }
            keep.push((node, e));
        }
        self.events = keep;
        out
    }

    /// Runs the rules over every identity and adds the credit up.
    pub fn finish(mut self) -> Report {
        let excluded = self.params.exclude_fraud.then(|| self.exclude_fraud());
        let mut events = std::mem::take(&mut self.events);
        for (node, _) in events.iter_mut() {
            *node = self.identities.find(*node);
        }
        events.sort_unstable_by_key(|a| (a.0, a.1.ts, a.1.order));
        let (from, to) = (self.params.from_ms, self.params.to_ms);
        let mut unattributed = Unattributed::default();
        let (mut total_conversions, mut total_revenue) = (0u64, 0.0f64);
        let mut identities = 0u64;
        let mut history: Vec<Ev> = Vec::new();
        let mut start = 0;
        while start < events.len() {
            let root = events[start].0;
            let end = start + events[start..].partition_point(|e| e.0 == root);
            identities += 1;
            history.clear();
            history.extend(events[start..end].iter().map(|e| e.1));
            for c in rules::attribute(&history, &self.params.windows, &self.params.model) {
                let e = &history[c.event];
                if !(from..to).contains(&e.ts) {
                    continue;
                }
                total_conversions += 1;
                total_revenue += e.revenue;
                if c.shares.is_empty() {
                    unattributed.conversions += 1.0;
                    unattributed.revenue += e.revenue;
                }
                let Kind::Conversion(ty) = e.kind else {
                    continue;
                };
                for (channel, share) in c.shares {
                    let t = &mut self.tallies[channel as usize];
                    t.conversions += share;
                    t.revenue += share * e.revenue;
                    t.by_type[ty as usize] += share;
                }
            }
            start = end;
        }
        let mut rows: Vec<ChannelRow> = self
            .tallies
            .iter()
            .zip(&self.channel_keys)
            .filter(|(t, _)| t.conversions > 0.0 || t.clicks > 0 || t.impressions > 0)
            .map(|(t, &(c, s, m))| ChannelRow {
                campaign: self.fields.name(c),
                source: self.fields.name(s),
                medium: self.fields.name(m),
                conversions: t.conversions,
                revenue: t.revenue,
                clicks: t.clicks,
                impressions: t.impressions,
                conversion_rate: (t.clicks > 0).then(|| t.conversions / t.clicks as f64),
                by_type: self
                    .params
                    .conversion_types
                    .iter()
                    .cloned()
                    .zip(t.by_type.iter().copied())
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.conversions
                .total_cmp(&a.conversions)
                .then_with(|| b.revenue.total_cmp(&a.revenue))
                .then_with(|| {
                    (&a.campaign, &a.source, &a.medium).cmp(&(&b.campaign, &b.source, &b.medium))
                })
        });
        Report {
            model: self.params.model.name().to_string(),
            rows,
            unattributed,
            total_conversions,
            total_revenue,
            events_scanned: events.len() as u64,
            identities,
            excluded_fraud: excluded,
        }
    }
}
