//! The data map of this crate's tables (see `kernel::data_map`). Messages carry global
//! ids and event types, never names or emails; a receiver's response is kept only as its
//! first bytes.

use kernel::data_map::{
    Category as C, Column, LegalBasis as B, Purpose as P, Retention as R, Subject as S, Table,
};

/// Every table of this crate.
pub const DATA_MAP: &[Table] = &[
    Table {
        name: "webhook_endpoints",
        owner: "webhooks",
        holds: "where an organization's integrations receive its events",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("url"),
            Column::plain("description"),
            Column::plain("event_types"),
            // Not about a person, but a credential: never exported.
            Column::personal(
                "secret",
                C::Credentials,
                &[P::Security],
                B::LegitimateInterest,
                R::WhileOrganizationExists,
            ),
            Column::personal(
                "previous_secret",
                C::Credentials,
                &[P::Security],
                B::LegitimateInterest,
                R::WhileOrganizationExists,
            ),
            Column::plain("previous_secret_until"),
            Column::plain("enabled"),
            Column::plain("disabled_reason"),
            Column::plain("failing_since"),
            Column::plain("created_at"),
            Column::plain("updated_at"),
        ],
    },
    Table {
        name: "webhook_messages",
        owner: "webhooks",
        holds: "events sent to an organization's integrations (types and global ids)",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("event_type"),
            Column::plain("payload"),
            Column::plain("created_at"),
        ],
    },
    Table {
        name: "webhook_deliveries",
        owner: "webhooks",
        holds: "each attempt to deliver an event to an endpoint, and how it went",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("endpoint_id"),
            Column::plain("message_id"),
            Column::plain("status"),
            Column::plain("attempts"),
            Column::plain("next_attempt_at"),
            Column::plain("response_status"),
            Column::plain("latency_ms"),
            Column::plain("response_excerpt"),
            Column::plain("last_error"),
            Column::plain("created_at"),
            Column::plain("updated_at"),
        ],
    },
    Table {
        name: "webhook_cursors",
        owner: "webhooks",
        holds: "how far each organization's events have been fanned out",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("last_seq"),
            Column::plain("updated_at"),
        ],
    },
];
