//! The data map of the tables this crate owns: every column, personal or not, with the
//! category, purposes, legal basis and retention of personal data (see
//! `kernel::data_map`). A test compares the collected map with the live catalog.

use kernel::data_map::{
    Category as C, Column, LegalBasis as B, Purpose as P, Retention as R, Subject as S, Table,
};

/// Every table of this crate.
pub const DATA_MAP: &[Table] = &[
    Table {
        name: "authz_policy_versions",
        owner: "authz",
        holds: "an organization's policy version",
        subjects: &[],
        columns: &[Column::plain("organization_id"), Column::plain("version")],
    },
    Table {
        name: "authz_role_assignments",
        owner: "authz",
        holds: "who holds which role",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::personal(
                "subject",
                C::Identity,
                &[P::Account, P::Security],
                B::ControllerInstructions,
                R::WhileAccountExists,
            ),
            Column::plain("role"),
            Column::plain("created_at"),
        ],
    },
    Table {
        name: "authz_roles",
        owner: "authz",
        holds: "custom roles",
        subjects: &[],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("name"),
            Column::plain("description"),
            Column::plain("created_at"),
        ],
    },
    Table {
        name: "authz_rules",
        owner: "authz",
        holds: "permissions of custom roles, deny rules and key scopes",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::personal(
                "subject",
                C::Identity,
                &[P::Security],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("resource_type"),
            Column::plain("action"),
            Column::plain("effect"),
            Column::plain("created_at"),
            Column::personal(
                "created_by",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::WhileOrganizationExists,
            ),
        ],
    },
    Table {
        name: "record_grants",
        owner: "authz",
        holds: "access granted on single records",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::personal(
                "subject",
                C::Identity,
                &[P::Security],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("resource_type"),
            Column::plain("resource_id"),
            Column::plain("relation"),
            Column::personal(
                "granted_by",
                C::Identity,
                &[P::Audit],
                B::LegitimateInterest,
                R::WhileOrganizationExists,
            ),
            Column::plain("created_at"),
        ],
    },
];
