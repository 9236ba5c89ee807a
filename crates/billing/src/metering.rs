//! Metering: usage events and the aggregations of billable metrics (count, sum, max,
//! unique count of a property, latest), computed exactly. Storage and ingestion come with
//! the usage tables; these are the rules they apply.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

/// One reported use of a metric. Its idempotency key is scoped to (organization, metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// The client's idempotency key.
    pub key: String,
    /// When the usage happened.
    pub occurred_at: DateTime<Utc>,
    /// When the platform received it (orders `latest` among equal occurrence times).
    pub received_at: DateTime<Utc>,
    /// The value (1 for a plain count).
    pub value: Decimal,
    /// Properties, for unique counts and filters.
    pub properties: BTreeMap<String, String>,
}

impl UsageEvent {
    /// Whether `other` reports the same usage: a retry with the same key and this payload
    /// is a no-op, with another payload a conflict. The receipt time is not payload.
    pub fn same_payload(&self, other: &Self) -> bool {
        self.key == other.key
            && self.occurred_at == other.occurred_at
            && self.value == other.value
            && self.properties == other.properties
    }
}

/// What a second report under an existing key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// The same payload: nothing changes, answer as the first time.
    Replay,
    /// Another payload under the same key: refused (`CONFLICT`), nothing changes.
    Conflict,
}

/// Classifies a report whose key is already recorded as `existing`.
pub fn duplicate_of(existing: &UsageEvent, incoming: &UsageEvent) -> Duplicate {
    if existing.same_payload(incoming) {
        Duplicate::Replay
    } else {
        Duplicate::Conflict
    }
}

/// How a metric turns a period's events into a billable quantity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregation {
    /// How many events.
    Count,
    /// The sum of values.
    Sum,
    /// The largest value.
    Max,
    /// How many distinct values of a property.
    UniqueCount {
        /// The property.
        property: String,
    },
    /// The value of the latest event (by occurrence, then receipt).
    Latest,
}

impl Aggregation {
    /// The quantity of `events` (those of one organization, metric and period). No
    /// events is zero.
    pub fn quantity(&self, events: &[UsageEvent]) -> Result<Decimal> {
        let overflow = || Error::Overflow;
        Ok(match self {
            Self::Count => Decimal::from(events.len()),
            Self::Sum => events
                .iter()
                .try_fold(Decimal::ZERO, |sum, e| sum.checked_add(e.value))
                .ok_or_else(overflow)?,
            Self::Max => events
                .iter()
                .map(|e| e.value)
                .max()
                .unwrap_or(Decimal::ZERO),
            Self::UniqueCount { property } => Decimal::from(
                events
                    .iter()
                    .filter_map(|e| e.properties.get(property))
                    .collect::<BTreeSet<_>>()
                    .len(),
            ),
            Self::Latest => events
                .iter()
                .max_by_key(|e| (e.occurred_at, e.received_at))
                .map_or(Decimal::ZERO, |e| e.value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn event(key: &str, minute: u32, received: u32, value: Decimal, user: &str) -> UsageEvent {
        UsageEvent {
            key: key.into(),
            occurred_at: Utc.with_ymd_and_hms(2027, 1, 1, 0, minute, 0).unwrap(),
            received_at: Utc.with_ymd_and_hms(2027, 1, 1, 1, received, 0).unwrap(),
            value,
            properties: BTreeMap::from([("user".to_owned(), user.to_owned())]),
        }
    }

    #[test]
    fn each_aggregation_over_one_set_of_events() {
        let events = [
            event("a", 1, 5, dec!(2.5), "u1"),
            event("b", 3, 1, dec!(4), "u2"),
            event("c", 3, 2, dec!(1), "u1"),
            event("d", 2, 9, dec!(7), "u3"),
        ];
        assert_eq!(Aggregation::Count.quantity(&events).unwrap(), dec!(4));
        assert_eq!(Aggregation::Sum.quantity(&events).unwrap(), dec!(14.5));
        assert_eq!(Aggregation::Max.quantity(&events).unwrap(), dec!(7));
        let unique = Aggregation::UniqueCount {
            property: "user".into(),
        };
        assert_eq!(unique.quantity(&events).unwrap(), dec!(3));
        // Latest: occurrence first (minute 3 twice), then receipt (c was received later).
        assert_eq!(Aggregation::Latest.quantity(&events).unwrap(), dec!(1));
        for aggregation in [
            Aggregation::Count,
            Aggregation::Sum,
            Aggregation::Max,
            Aggregation::Latest,
            unique,
        ] {
            assert_eq!(aggregation.quantity(&[]).unwrap(), Decimal::ZERO);
        }
    }

    #[test]
    fn a_retry_with_the_same_payload_replays_and_another_payload_conflicts() {
        let first = event("k", 1, 1, dec!(1), "u1");
        let mut retry = first.clone();
        retry.received_at = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(duplicate_of(&first, &retry), Duplicate::Replay);
        let changed = event("k", 1, 1, dec!(2), "u1");
        assert_eq!(duplicate_of(&first, &changed), Duplicate::Conflict);
        let other_property = event("k", 1, 1, dec!(1), "u2");
        assert_eq!(duplicate_of(&first, &other_property), Duplicate::Conflict);
    }
}
