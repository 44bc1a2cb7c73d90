//! Counts the OTLP batches `POST /v1/metrics` stored (and acknowledged) into
//! the usage table: each batch once, in order, by whichever replica gets to it.

use chrono_tz::Tz;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use crate::attribution::identity::Directory;
use crate::config::Config;
use crate::scoring::usage::decode;
use crate::store::usage::DatedPoint;
use crate::store::{Store, StoreError};

/// Batches read at a time.
const BATCHES: i64 = 50;

/// Counts every stored batch not counted yet. Returns how many points added
/// something.
pub async fn count_stored(
    store: &Store,
    config: &Config,
    tz: Tz,
    now: i64,
) -> Result<u64, StoreError> {
    let directory = Directory::new(&config.people);
    let mut counted = 0;
    loop {
        let batches = store.open_usage_batches(BATCHES).await?;
        if batches.is_empty() {
            return Ok(counted);
        }
        for (id, body) in batches {
            // Stored as it was decoded on receipt: it decodes again.
            let request = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap_or_default();
            let decoded = decode(&request, &config.usage.agents);
            let dated: Vec<DatedPoint<'_>> = decoded
                .points
                .iter()
                .map(|p| DatedPoint {
                    point: p,
                    person: directory.person_for_email(&p.email),
                    day: crate::scoring::week::day_of(p.time_ns.div_euclid(1_000_000), tz),
                })
                .collect();
            counted += store.count_usage_batch(id, &dated, now).await?.unwrap_or(0);
        }
    }
}
