//! The data map of the tables this crate owns: every column, personal or not, with the
//! category, purposes, legal basis and retention of personal data (see
//! `kernel::data_map`). A test compares the collected map with the live catalog.

use kernel::data_map::{
    Category as C, Column, LegalBasis as B, Purpose as P, Retention as R, Subject as S, Table,
};

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
            Column::personal(
                "name",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::personal(
                "description",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("archived"),
            Column::personal(
                "created_by",
                C::Identity,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
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
            Column::personal(
                "title",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::personal(
                "body",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("status"),
            Column::personal(
                "author_id",
                C::Identity,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
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
            Column::personal(
                "title",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::personal(
                "body",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::personal(
                "edited_by",
                C::Identity,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
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
            Column::personal(
                "reviewer_id",
                C::Identity,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("decision"),
            Column::personal(
                "comment",
                C::Content,
                &[P::Service],
                B::ControllerInstructions,
                R::WhileOrganizationExists,
            ),
            Column::plain("created_at"),
        ],
    },
];
