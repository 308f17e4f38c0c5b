//! Kafka through librdkafka (`rdkafka`): the idempotent producer (`enable.idempotence`,
//! `acks=all`), lz4-compressed batches, key = `event_id`, value = the stored event as JSON,
//! headers `app_id`, `event_type` and `log_index`. A batch counts as written once every record
//! of it is acknowledged by the broker.
//!
//! The idempotent producer removes duplicates only within one producer session: after a
//! failover, a restart or a replay, records already in the topic can be produced again.
//! Consumers deduplicate on the key (compat/README.md has the rule); the topic may also be
//! compacted (`cleanup.policy=compact`), which keeps one record per key.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::{SinkBatch, SinkErasure};
use crate::error::MirrorError;
use crate::spec::MirrorSpec;

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

fn config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "30000")
        .set("socket.timeout.ms", "10000")
        .set("log_level", "3");
    c
}

impl KafkaSink {
    pub async fn connect(spec: &MirrorSpec) -> Result<Self, MirrorError> {
        let brokers = spec.url.expose();
        let producer: FutureProducer = config(brokers)
            .create()
            .map_err(|e| MirrorError::Config(format!("Kafka producer: {e}")))?;
        // The topic is created if missing (one partition per broker's default, replication 1
        // on a single broker); an existing one is used as it is.
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("socket.timeout.ms", "10000")
            .create()
            .map_err(|e| MirrorError::Config(format!("Kafka admin client: {e}")))?;
        let topic = NewTopic::new(&spec.topic, 1, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let res = admin
            .create_topics([&topic], &opts)
            .await
            .map_err(|e| MirrorError::Sink(format!("Kafka unreachable: {e}")))?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(MirrorError::Sink(format!("creating topic {t}: {code}")));
                }
            }
        }
        let topic_name = spec.topic.clone();
        let probe = producer.clone();
        tokio::task::spawn_blocking(move || {
            probe
                .client()
                .fetch_metadata(Some(&topic_name), Duration::from_secs(10))
                .map(|_| ())
        })
        .await
        .map_err(|e| MirrorError::Sink(e.to_string()))?
        .map_err(|e| MirrorError::Sink(format!("Kafka unreachable: {e}")))?;
        Ok(Self {
            producer,
            topic: spec.topic.clone(),
        })
    }

    /// A tombstone (no value) for each erased event, keyed by its id with header
    /// `erasure = 1`: a compacted topic then drops the event, and consumers delete it.
    pub async fn erase(&mut self, e: &SinkErasure<'_>) -> Result<(), MirrorError> {
        let mut pending = Vec::with_capacity(e.event_ids.len());
        for id in e.event_ids {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "app_id",
                    value: Some(e.app_id.as_bytes()),
                })
                .insert(Header {
                    key: "erasure",
                    value: Some("1".as_bytes()),
                });
            let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic)
                .key(id.as_bytes())
                .headers(headers);
            pending.push(self.enqueue(record, "tombstone").await?);
        }
        acknowledged(pending, "tombstone").await
    }

    pub async fn write(&mut self, b: &SinkBatch<'_>) -> Result<(), MirrorError> {
        let mut pending = Vec::with_capacity(b.rows.len());
        // librdkafka copies key, value and headers when a record is enqueued.
        let mut value = Vec::with_capacity(1024);
        for r in b.rows {
            value.clear();
            r.write_json(&mut value);
            let index = r.log_index.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "app_id",
                    value: Some(r.app_id.as_bytes()),
                })
                .insert(Header {
                    key: "event_type",
                    value: Some(r.event_type.as_bytes()),
                })
                .insert(Header {
                    key: "log_index",
                    value: Some(index.as_bytes()),
                });
            let record = FutureRecord::to(&self.topic)
                .key(r.event_id.as_bytes())
                .payload(value.as_slice())
                .headers(headers);
            pending.push(self.enqueue(record, "record").await?);
        }
        acknowledged(pending, "record").await
    }
}

impl KafkaSink {
    /// Enqueues `record` (acknowledged later); a full queue is waited out, not failed.
    async fn enqueue(
        &self,
        mut record: FutureRecord<'_, [u8], [u8]>,
        what: &str,
    ) -> Result<rdkafka::producer::DeliveryFuture, MirrorError> {
        loop {
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                    record = rec;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    return Err(MirrorError::Sink(format!("Kafka refused a {what}: {e}")))
                }
            }
        }
    }
}

/// Waits until the broker acknowledged every enqueued record.
async fn acknowledged(
    pending: Vec<rdkafka::producer::DeliveryFuture>,
    what: &str,
) -> Result<(), MirrorError> {
    for res in futures::future::join_all(pending).await {
        match res {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                return Err(MirrorError::Sink(format!(
                    "Kafka did not acknowledge a {what}: {e}"
                )))
            }
            Err(_) => return Err(MirrorError::Sink("the Kafka producer was closed".into())),
        }
    }
    Ok(())
}
