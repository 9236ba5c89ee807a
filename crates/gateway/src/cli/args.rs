//! What the command line accepts: the settings (`Config`, before or after the
//! subcommand) and each subcommand with its flags.

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The multi-tenant platform backend.
#[derive(Debug, Parser)]
#[command(name = "platform", version, about)]
pub(super) struct Cli {
    #[command(flatten)]
    pub(super) config: Config,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Serve GraphQL (applies pending migrations on SQLite).
    Serve,
    /// Apply pending migrations (as the owner role: `MIGRATE_DATABASE_URL`).
    Migrate,
    /// Create the demo organizations and users (once; later runs change nothing).
    Seed,
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Billing operations.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Platform staff (who may import the billing catalog through GraphQL).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// The billing catalog (plans and metrics).
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Trusted documents of the platform's own apps (runnable by `documentId` by every
    /// caller).
    PersistedQueries {
        #[command(subcommand)]
        command: PersistedQueriesCommand,
    },
    /// The durable job queue: what waits, runs, and died.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Data protection: the record of processing activities.
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// Write the GraphQL schema (SDL).
    ExportSchema {
        /// Where to write it.
        #[arg(long, default_value = "schema.graphql")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum JobsCommand {
    /// Counts per kind and state, then the newest jobs (at most 500), of one state or
    /// kind if given.
    List {
        /// pending, running, done, dead or cancelled.
        #[arg(long, value_parser = parse_job_state)]
        state: Option<jobs::JobState>,
        /// A kind, e.g. `billing.organization`.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Puts a dead or cancelled job back in the queue, due now, attempts reset.
    Retry {
        /// The job (UUID).
        id: uuid::Uuid,
    },
    /// Cancels a pending or dead job.
    Cancel {
        /// The job (UUID).
        id: uuid::Uuid,
    },
}

pub(super) fn parse_job_state(name: &str) -> Result<jobs::JobState, String> {
    jobs::JobState::parse(name)
        .ok_or_else(|| "one of pending, running, done, dead, cancelled".to_owned())
}

#[derive(Debug, Subcommand)]
pub(super) enum PrivacyCommand {
    /// Print the record of processing activities (GDPR Art. 30), generated from the data
    /// map in code.
    Record {
        /// `md` (Markdown) or `json`.
        #[arg(long, value_enum, default_value_t = RecordFormat::Md)]
        format: RecordFormat,
    },
    /// Erases the account with this email for a request received another way (by
    /// mail): no password needed; recorded in the erasure ledger and the audit trail.
    Erase {
        /// The account's email address.
        email: String,
    },
    /// Publishes a data processing agreement version (immutable): its text from FILE and
    /// the subprocessors it lists. Organizations must accept it (after the notice period)
    /// to start a paid plan or create API keys.
    PublishDpa {
        /// The text (Markdown or plain).
        file: PathBuf,
        /// The version label (`2026-12`, say).
        #[arg(long)]
        version: String,
        /// A subprocessor as `name|purpose|location`; repeat for each.
        #[arg(long = "subprocessor")]
        subprocessors: Vec<String>,
    },
    /// Re-applies every erasure in the erasure ledger (after restoring a backup, or to
    /// finish one that stopped midway); idempotent. `--ledger FILE` first adds the
    /// entries of an exported ledger the database lacks (a backup older than them).
    ReplayErasures {
        /// An exported ledger (`privacy export-erasures`).
        #[arg(long)]
        ledger: Option<PathBuf>,
    },
    /// Prints the erasure ledger as NDJSON (pseudonymous: ids and keyed hashes), to keep
    /// beside the backups.
    ExportErasures,
    /// Purges every organization whose deletion is due (the server does it on its
    /// retention timer), and finishes a purge that stopped midway.
    PurgeDue,
}

/// How `privacy record` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum RecordFormat {
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

#[derive(Debug, Subcommand)]
pub(super) enum StaffCommand {
    /// Make a person platform staff.
    Grant {
        /// Their email address.
        email: String,
    },
    /// Make a person no longer platform staff.
    Revoke {
        /// Their email address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum BillingCommand {
    /// Move every subscription to now and cut the invoices due (what the server's timer
    /// does every `BILLING_RUN_INTERVAL_SECS`).
    Run,
    /// Mark an invoice paid (a bank transfer arrived).
    MarkPaid {
        /// The organization (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// The invoice (UUID).
        #[arg(long)]
        invoice: kernel::InvoiceId,
    },
    /// Void a finalized, unpaid invoice.
    VoidInvoice {
        /// The organization (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// The invoice (UUID).
        #[arg(long)]
        invoice: kernel::InvoiceId,
    },
    /// Issue a credit note against an invoice (the whole remaining total without
    /// `--amount`).
    CreditNote {
        /// The organization (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// The invoice (UUID).
        #[arg(long)]
        invoice: kernel::InvoiceId,
        /// Amount in major units (`12.50`).
        #[arg(long)]
        amount: Option<rust_decimal::Decimal>,
        /// Why, printed on the credit note.
        #[arg(long)]
        reason: String,
    },
    /// Set an organization's tax rate (a fraction: 0.19 for 19 %).
    SetTaxRate {
        /// The organization (UUID).
        #[arg(long)]
        org: uuid::Uuid,
        /// The rate.
        #[arg(long)]
        rate: rust_decimal::Decimal,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum PersistedQueriesCommand {
    /// Import an Apollo persisted query manifest (JSON): its ids checked against its
    /// bodies, each body checked to be one named operation; known documents are left as
    /// they are. As the owner role (`MIGRATE_DATABASE_URL`).
    Import {
        /// The manifest file.
        manifest: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum CatalogCommand {
    /// Import a catalog file (JSON): creates new metrics and publishes a new version of
    /// every plan whose definition changed; the rest is left alone. All or nothing.
    Import {
        /// The file (see `catalog/demo.json`).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Recompute every organization's hash chain (or one's) and name the first broken
    /// link; exits non-zero when a chain is broken.
    Verify {
        /// An organization id (UUID); all organizations when omitted.
        #[arg(long)]
        org: Option<uuid::Uuid>,
        /// Hash in this process from the stored values the database sends, instead of
        /// letting PostgreSQL hash (an independent recomputation; slower).
        #[arg(long)]
        hash_here: bool,
    },
    /// Purge, in every organization that set a retention, the events older than it (what
    /// the server does every `AUDIT_RETENTION_INTERVAL_SECS`); each purge is recorded in
    /// its organization's chain.
    PurgeExpired,
}
