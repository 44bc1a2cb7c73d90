//! Counts the OTLP batches `POST /v1/metrics` stored (and acknowledged) into
//! the usage table: each batch once, in order, by whichever replica gets to it.

use chrono_tz::Tz;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use crate::attribution::identity::Directory;
use crate::config::Config;
use crate::scoring::usage::{UsagePoint, decode};
use crate::store::usage::DatedPoint;
use crate::store::{Store, StoreError};

/// Batches read at a time.
const BATCHES: i64 = 50;
/// Protobuf bytes decoded and counted in one transaction (decoded points take
/// several times their encoded size).
const GROUP_BYTES: i64 = 4 * 1024 * 1024;

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
        let open = store.open_usage_batches(BATCHES).await?;
        if open.is_empty() {
            return Ok(counted);
        }
        for (first, last) in groups(&open) {
            counted += count_group(store, config, &directory, tz, now, first, last).await?;
        }
    }
}

/// Consecutive open batches grouped up to [`GROUP_BYTES`] of bodies (at least
/// one batch each): (first id, last id).
fn groups(open: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut groups: Vec<(i64, i64)> = Vec::new();
    let mut bytes = 0;
    for &(id, size) in open {
        match groups.last_mut() {
            Some(group) if bytes + size <= GROUP_BYTES => {
                group.1 = id;
                bytes += size;
            }
            _ => {
                groups.push((id, id));
                bytes = size;
            }
        }
    }
    groups
}

/// Counts the open batches from `first` to `last` in one transaction.
async fn count_group(
    store: &Store,
    config: &Config,
    directory: &Directory,
    tz: Tz,
    now: i64,
    first: i64,
    last: i64,
) -> Result<u64, StoreError> {
    let batches = store.usage_batch_bodies(first, last).await?;
    // Stored as they were decoded on receipt: they decode again.
    let decoded: Vec<(i64, Vec<UsagePoint>)> = batches
        .iter()
        .map(|(id, body)| {
            let request = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap_or_default();
            (*id, decode(&request, &config.usage.agents).points)
        })
        .collect();
    let dated: Vec<(i64, Vec<DatedPoint<'_>>)> = decoded
        .iter()
        .map(|(id, points)| {
            let points = points
                .iter()
                .map(|p| DatedPoint {
                    point: p,
                    person: directory.person_for_email(&p.email),
                    day: crate::scoring::week::day_of(p.time_ns.div_euclid(1_000_000), tz),
                })
                .collect();
            (*id, points)
        })
        .collect();
    // One transaction for what was read: a transaction per small batch
    // cost more than counting it.
    store.count_usage_batches(&dated, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_share_a_transaction_and_a_large_one_has_its_own() {
        let mb = 1024 * 1024;
        let open = [
            (1, 100),
            (2, 200),
            (4, 3 * mb),
            (5, 2 * mb),
            (6, 5 * mb),
            (9, 10),
        ];
        assert_eq!(groups(&open), vec![(1, 4), (5, 5), (6, 6), (9, 9)]);
        assert_eq!(groups(&[]), vec![]);
    }
}
