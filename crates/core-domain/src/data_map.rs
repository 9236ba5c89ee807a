//! The data map of the tables this crate owns: every column, personal or not, with the
//! category, purposes, legal basis and retention of personal data (see
//! `kernel::data_map`). A test compares the collected map with the live catalog.

use kernel::data_map::{
    Category as C, Column, LegalBasis as B, Purpose as P, Retention as R, Subject as S, Table,
};

/// What a customer organization keeps in the product: processed on its instructions for
/// the service, kept while the organization exists.
const fn service(name: &'static str, category: C) -> Column {
    Column::personal(
        name,
        category,
        &[P::Service],
        B::ControllerInstructions,
        R::WhileOrganizationExists,
    )
}

/// Every table of this crate.
pub const DATA_MAP: &[Table] = &[
    Table {
        name: "projects",
        owner: "core-domain",
        holds: "customers' projects",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            service("name", C::Content),
            service("description", C::Content),
            Column::plain("archived"),
            service("created_by", C::Identity),
            Column::plain("created_at"),
            Column::plain("updated_at"),
            Column::plain("required_approvals"),
        ],
    },
    Table {
        name: "documents",
        owner: "core-domain",
        holds: "customers' documents",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("project_id"),
            service("title", C::Content),
            service("body", C::Content),
            Column::plain("status"),
            service("author_id", C::Identity),
            Column::plain("version"),
            Column::plain("review_round"),
            Column::plain("created_at"),
            Column::plain("updated_at"),
        ],
    },
    Table {
        name: "document_versions",
        owner: "core-domain",
        holds: "saved versions of documents",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("document_id"),
            Column::plain("version"),
            service("title", C::Content),
            service("body", C::Content),
            service("edited_by", C::Identity),
            Column::plain("edited_at"),
            Column::plain("changed_fields"),
        ],
    },
    Table {
        name: "document_reviews",
        owner: "core-domain",
        holds: "approvals and change requests on documents",
        subjects: &[S::Members],
        columns: &[
            Column::plain("organization_id"),
            Column::plain("id"),
            Column::plain("document_id"),
            Column::plain("review_round"),
            Column::plain("version"),
            service("reviewer_id", C::Identity),
            Column::plain("decision"),
            service("comment", C::Content),
            Column::plain("created_at"),
        ],
    },
];
