//! Postgres: typed columns, a primary key on `(app_id, event_id)`, and each batch in one
//! transaction: `COPY` (CSV) into a per-connection staging table, `INSERT … SELECT DISTINCT ON
//! … ON CONFLICT DO NOTHING` into the table, and the mirror's watermark row
//! (`unmogrowp_mirror_progress`) in the same transaction. A re-sent batch inserts nothing.

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::{Client, NoTls};

use super::{SinkBatch, SinkErasure};
use crate::error::MirrorError;
use crate::row::{MirrorRow, Pairs};
use crate::spec::MirrorSpec;

/// Columns written, in COPY order, with the type each must have.
const COLUMNS: &[(&str, &str)] = &[
    ("event_id", "text"),
    ("app_id", "text"),
    ("event_type", "text"),
    ("timestamp", "timestamp with time zone"),
    ("user_id", "text"),
    ("session_id", "text"),
    ("device_id", "text"),
    ("platform", "text"),
    ("app_version", "text"),
    ("attribution", "jsonb"),
    ("event_data", "jsonb"),
    ("revenue", "numeric"),
    ("currency", "text"),
    ("ip", "text"),
    ("user_agent", "text"),
    ("received_at", "timestamp with time zone"),
    ("log_index", "bigint"),
];

const PROGRESS: &str = "unmogrowp_mirror_progress";

pub struct PgSink {
    client: Client,
    table: String,
    column_list: String,
}

fn sink_err(what: &str, e: tokio_postgres::Error) -> MirrorError {
    // The server's own message (with its detail) says more than the client's summary.
    let msg = match e.as_db_error() {
        Some(db) => format!("{what}: {}: {}", db.severity(), db.message()),
        None => format!("{what}: {e}"),
    };
    MirrorError::Sink(msg)
}

fn create_sql(table: &str) -> String {
    format!(
        "SET client_min_messages TO warning;
        CREATE TABLE IF NOT EXISTS {table} (
            event_id text NOT NULL,
            app_id text NOT NULL,
            event_type text NOT NULL,
            \"timestamp\" timestamptz NOT NULL,
            user_id text,
            session_id text,
            device_id text NOT NULL,
            platform text NOT NULL,
            app_version text,
            attribution jsonb NOT NULL DEFAULT '{{}}',
            event_data jsonb NOT NULL DEFAULT '{{}}',
            revenue numeric,
            currency text,
            ip text,
            user_agent text,
            received_at timestamptz NOT NULL,
            log_index bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (app_id, event_id)
        );
        CREATE TABLE IF NOT EXISTS {PROGRESS} (
            mirror text PRIMARY KEY,
            log_index bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );"
    )
}

impl PgSink {
    pub async fn connect(spec: &MirrorSpec) -> Result<Self, MirrorError> {
        let (client, conn) = tokio_postgres::connect(spec.url.expose(), NoTls)
            .await
            .map_err(|e| sink_err("connecting to Postgres", e))?;
        let name = spec.name.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(mirror = %name, error = %e, "Postgres connection closed");
            }
        });
        client
            .batch_execute(&create_sql(&spec.table))
            .await
            .map_err(|e| sink_err(&format!("creating table {}", spec.table), e))?;
        check_columns(&client, &spec.table).await?;
        client
            .batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS unmogrowp_stage \
                 (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                spec.table
            ))
            .await
            .map_err(|e| sink_err("creating the staging table", e))?;
        let column_list = COLUMNS
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self {
            client,
            table: spec.table.clone(),
            column_list,
        })
    }

    /// `DELETE`s the erasure's rows (by the identifiers, so rows of any batch are found).
    pub async fn erase(&mut self, e: &SinkErasure<'_>) -> Result<(), MirrorError> {
        let before = i64::try_from(e.before_index).unwrap_or(i64::MAX);
        let sql = format!(
            "DELETE FROM {} WHERE app_id = $1 AND log_index < $2 \
             AND (user_id = ANY($3) OR device_id = ANY($4))",
            self.table
        );
        let n = self
            .client
            .execute(&sql, &[&e.app_id, &before, &e.user_ids, &e.device_ids])
            .await
            .map_err(|err| sink_err("erasing rows", err))?;
        tracing::info!(table = %self.table, rows = n, "erasure: rows deleted from Postgres");
        Ok(())
    }

    pub async fn write(&mut self, b: &SinkBatch<'_>) -> Result<(), MirrorError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| sink_err("beginning a transaction", e))?;
        if !b.rows.is_empty() {
            let copy = tx
                .copy_in(&format!(
                    "COPY unmogrowp_stage ({}) FROM STDIN (FORMAT csv)",
                    self.column_list
                ))
                .await
                .map_err(|e| sink_err("starting COPY", e))?;
            futures::pin_mut!(copy);
            for chunk in b.rows.chunks(2048) {
                let mut buf = Vec::with_capacity(chunk.len() * 400);
                for r in chunk {
                    csv_row(&mut buf, r);
                }
                copy.send(Bytes::from(buf))
                    .await
                    .map_err(|e| sink_err("COPY", e))?;
            }
            copy.finish().await.map_err(|e| sink_err("COPY", e))?;
            tx.execute(
                &format!(
                    "INSERT INTO {t} ({c}) SELECT DISTINCT ON (app_id, event_id) {c} \
                     FROM unmogrowp_stage ON CONFLICT (app_id, event_id) DO NOTHING",
                    t = self.table,
                    c = self.column_list
                ),
                &[],
            )
            .await
            .map_err(|e| sink_err(&format!("inserting into {}", self.table), e))?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {PROGRESS} (mirror, log_index, updated_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (mirror) DO UPDATE SET log_index = EXCLUDED.log_index, updated_at = now()"
            ),
            &[&b.mirror, &(b.to as i64)],
        )
        .await
        .map_err(|e| sink_err("recording the watermark", e))?;
        tx.commit().await.map_err(|e| sink_err("COMMIT", e))
    }
}

/// The existing table must have every column the mirror writes, with its type.
async fn check_columns(client: &Client, table: &str) -> Result<(), MirrorError> {
    let (schema, name) = match table.split_once('.') {
        Some((s, t)) => (s.to_string(), t.to_string()),
        None => ("".to_string(), table.to_string()),
    };
    let rows = client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_name = $1 AND ($2 = '' OR table_schema = $2) \
             AND ($2 <> '' OR table_schema = ANY (current_schemas(false)))",
            &[&name, &schema],
        )
        .await
        .map_err(|e| sink_err("reading the table's columns", e))?;
    let have: std::collections::HashMap<String, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut wrong = Vec::new();
    for (c, ty) in COLUMNS {
        match have.get(*c) {
            None => wrong.push(format!("{c} is missing")),
            Some(t) if t != ty => wrong.push(format!("{c} is {t}, expected {ty}")),
            Some(_) => {}
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(MirrorError::Schema(format!(
            "table {table} does not match what the mirror writes: {}",
            wrong.join("; ")
        )))
    }
}

fn quoted(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' {
            buf.push(b'"');
        }
        buf.push(b);
    }
    buf.push(b'"');
}

fn field(buf: &mut Vec<u8>, v: Option<&str>) {
    // CSV COPY: an unquoted empty field is NULL, a quoted one is text.
    if let Some(s) = v {
        quoted(buf, s);
    }
    buf.push(b',');
}

fn json(pairs: &[(String, String)]) -> String {
    serde_json::to_string(&Pairs(pairs)).unwrap_or_else(|_| "{}".into())
}

fn csv_row(buf: &mut Vec<u8>, r: &MirrorRow) {
    field(buf, Some(&r.event_id));
    field(buf, Some(&r.app_id));
    field(buf, Some(&r.event_type));
    field(buf, Some(&r.timestamp));
    field(buf, r.user_id.as_deref());
    field(buf, r.session_id.as_deref());
    field(buf, Some(&r.device_id));
    field(buf, Some(&r.platform));
    field(buf, r.app_version.as_deref());
    field(buf, Some(&json(&r.attribution)));
    field(buf, Some(&json(&r.event_data)));
    let revenue = r.revenue.filter(|v| v.is_finite()).map(|v| v.to_string());
    field(buf, revenue.as_deref());
    field(buf, r.currency.as_deref());
    field(buf, r.ip.as_deref());
    field(buf, r.user_agent.as_deref());
    field(buf, Some(&r.received_at));
    buf.extend_from_slice(r.log_index.to_string().as_bytes());
    buf.push(b'\n');
}
