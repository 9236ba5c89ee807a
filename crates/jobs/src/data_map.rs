//! The data map of the queue's table (see `kernel::data_map`): payloads and errors carry
//! ids and codes, never personal data.

use kernel::data_map::{Column, Table};

/// Every table of this crate.
pub const DATA_MAP: &[Table] = &[Table {
    name: "jobs",
    owner: "jobs",
    holds: "the durable job queue: what runs after a request (kinds, ids, attempts, errors)",
    subjects: &[],
    columns: &[
        Column::plain("id"),
        Column::plain("kind"),
        Column::plain("payload"),
        Column::plain("unique_key"),
        Column::plain("state"),
        Column::plain("attempts"),
        Column::plain("max_attempts"),
        Column::plain("run_at"),
        Column::plain("locked_by"),
        Column::plain("locked_until"),
        Column::plain("last_error"),
        Column::plain("created_at"),
        Column::plain("updated_at"),
    ],
}];
