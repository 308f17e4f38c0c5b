//! Postgres / ClickHouse / Kafka mirrors. Empty until their issue.
