//! The data map of the tables this crate owns: every column, personal or not, with the
//! category, purposes, legal basis and retention of personal data (see
//! `kernel::data_map`). A test compares the collected map with the live catalog.

use kernel::data_map::{
    Category as C, Column, LegalBasis as B, Purpose as P, Retention as R, Subject as S, Table,
};

/// An event's columns, in the chain and in the inbox alike; `$chain` are the chain's own
/// (its sequence and links).
macro_rules! event_columns {
    ($($chain:expr),*) => {
        &[
            Column::plain("organization_id"),
            $($chain,)*
            Column::plain("id"),
            Column::plain("occurred_at"),
            Column::plain("actor_type"),
            Column::personal(
                "actor_id",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::AuditRetention,
            ),
            Column::personal(
                "impersonator_id",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::AuditRetention,
            ),
            Column::plain("action"),
            Column::plain("target_type"),
            Column::personal(
                "target_id",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::AuditRetention,
            ),
            Column::plain("outcome"),
            Column::personal(
                "diff",
                C::Content,
                &[P::Audit],
                B::LegitimateInterest,
                R::AuditRetention,
            ),
            Column::plain("request_id"),
            Column::plain("operation"),
            Column::personal(
                "client",
                C::Network,
                &[P::Audit, P::Security],
                B::LegitimateInterest,
                R::AuditRetention,
            ),
        ]
    };
}

/// Every table of this crate.
pub const DATA_MAP: &[Table] = &[
    Table {
        name: "audit_events",
        owner: "audit",
        holds: "the hash-chained audit trail; personal values in it are encrypted per person",
        subjects: &[S::Users, S::Members, S::Visitors],
        columns: event_columns!(
            Column::plain("seq"),
            Column::plain("prev_hash"),
            Column::plain("hash")
        ),
    },
    Table {
        name: "audit_inbox",
        owner: "audit",
        holds: "audit events recorded but not chained yet (a busy organization's, for milliseconds); personal values encrypted per person",
        subjects: &[S::Users, S::Members, S::Visitors],
        columns: event_columns!(),
    },
    Table {
        name: "audit_purges",
        owner: "audit",
        holds: "purge anchors of the audit trail",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("through_seq"),
            Column::plain("anchor_hash"),
            Column::plain("purged_at"),
        ],
    },
    Table {
        name: "audit_retention",
        owner: "audit",
        holds: "organizations' audit retention settings",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("keep_days"),
            Column::plain("updated_at"),
        ],
    },
    Table {
        name: "personal_data_keys",
        owner: "audit",
        holds: "per-person keys that encrypt personal values in the audit trail (deleted to erase)",
        subjects: &[S::Users, S::Visitors],
        columns: &[
            Column::personal(
                "subject",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::WhileAccountExists,
            ),
            Column::personal(
                "key",
                C::Credentials,
                &[P::Audit],
                B::LegitimateInterest,
                R::WhileAccountExists,
            ),
            Column::plain("created_at"),
        ],
    },
];
