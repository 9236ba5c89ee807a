//! Data protection as the platform states it: the data map collected from every crate,
//! and the record of processing activities (GDPR Art. 30) generated from it.

use kernel::data_map::{Category, LegalBasis, Purpose, Retention, Subject, Table};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Every table of every crate, classified.
pub fn data_map() -> Vec<&'static Table> {
    [
        kernel::data_map::DATA_MAP,
        tenancy::data_map::DATA_MAP,
        authz::data_map::DATA_MAP,
        audit::data_map::DATA_MAP,
        core_domain::data_map::DATA_MAP,
        billing::data_map::DATA_MAP,
        jobs::data_map::DATA_MAP,
        webhooks::data_map::DATA_MAP,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Who receives personal data from the platform.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Recipient {
    /// Who.
    pub name: &'static str,
    /// For what.
    pub purpose: &'static str,
    /// What it receives.
    pub receives: &'static str,
    /// Where it processes.
    pub location: &'static str,
}

/// The platform's subprocessors (the data processing agreement lists the same).
pub const RECIPIENTS: &[Recipient] = &[
    Recipient {
        name: "The operator's hosting provider",
        purpose: "runs the servers and the database",
        receives: "everything stored, encrypted at rest by the provider",
        location: "as agreed with each customer",
    },
    Recipient {
        name: "Stripe, Inc. (when PAYMENT_PROVIDER=stripe)",
        purpose: "charges invoices",
        receives: "organization ids, invoice numbers and amounts; no personal data of members",
        location: "EU and USA (EU-US Data Privacy Framework)",
    },
];

/// The technical and organizational measures (Art. 32) the machinery provides.
pub const MEASURES: &[&str] = &[
    "Tenant separation twice: every tenant query is bound to one organization in code \
     (TenantTx), and PostgreSQL Row-Level Security (forced) refuses other organizations' rows.",
    "Least privilege: the application role may only what the code needs; its privileges are \
     compared with a reviewed allow-list by a test.",
    "Passwords hashed with Argon2id; refresh tokens, API key and invitation secrets stored as \
     SHA-256 digests only.",
    "Personal values in the audit trail encrypted per person (AES-256-GCM); deleting the \
     person's key erases them everywhere while the hash chain still verifies.",
    "A tamper-evident, hash-chained audit trail per organization, verifiable on demand.",
    "Log-in throttling per account and address; API keys scoped, expiring and revoked with \
     their creator's standing.",
    "Logs and traces carry ids, never names, email addresses or IP addresses.",
];

/// One processing activity: a purpose, and what it uses.
#[derive(Debug, Serialize)]
pub struct Activity {
    /// The purpose.
    pub purpose: Purpose,
    /// What it is for, in words.
    pub description: &'static str,
    /// Legal bases of the data it uses.
    pub legal_bases: BTreeSet<LegalBasis>,
    /// Categories of personal data.
    pub categories: BTreeSet<Category>,
    /// Categories of data subjects.
    pub subjects: BTreeSet<Subject>,
    /// The columns (`table.column`) with their retention.
    pub data: Vec<Held>,
}

/// One personal-data column as an activity holds it.
#[derive(Debug, Serialize)]
pub struct Held {
    /// `table.column`.
    pub column: String,
    /// Its category.
    pub category: Category,
    /// How long it is kept.
    pub retention: Retention,
}

/// The record of processing activities.
#[derive(Debug, Serialize)]
pub struct Record {
    /// Processing activities, one per purpose.
    pub activities: Vec<Activity>,
    /// Recipients (subprocessors).
    pub recipients: &'static [Recipient],
    /// Technical and organizational measures.
    pub measures: &'static [&'static str],
}

fn describe(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Account => {
            "Providing accounts: sign-up, log-in, organizations, memberships and invitations \
             (controller for account data)."
        }
        Purpose::Security => {
            "Securing accounts and the platform: authentication, sessions, API keys, access \
             rules and log-in throttling."
        }
        Purpose::Billing => "Invoicing organizations, charging payments and metering usage.",
        Purpose::Audit => "Accountability: a tamper-evident trail of who did what, and when.",
        Purpose::Service => {
            "Running the product for a customer organization on its instructions (processor, \
             Art. 28): projects, documents, reviews."
        }
    }
}

/// The record, generated from the data map.
pub fn record() -> Record {
    let mut by_purpose: BTreeMap<Purpose, Activity> = BTreeMap::new();
    for table in data_map() {
        for column in table.columns {
            let Some(personal) = column.personal else {
                continue;
            };
            for &purpose in personal.purposes {
                let activity = by_purpose.entry(purpose).or_insert_with(|| Activity {
                    purpose,
                    description: describe(purpose),
                    legal_bases: BTreeSet::new(),
                    categories: BTreeSet::new(),
                    subjects: BTreeSet::new(),
                    data: Vec::new(),
                });
                activity.legal_bases.insert(personal.basis);
                activity.categories.insert(personal.category);
                activity.subjects.extend(table.subjects.iter().copied());
                activity.data.push(Held {
                    column: format!("{}.{}", table.name, column.name),
                    category: personal.category,
                    retention: personal.retention,
                });
            }
        }
    }
    Record {
        activities: by_purpose.into_values().collect(),
        recipients: RECIPIENTS,
        measures: MEASURES,
    }
}

fn words<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

fn title(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Account => "Accounts",
        Purpose::Security => "Security",
        Purpose::Billing => "Billing",
        Purpose::Audit => "Audit trail",
        Purpose::Service => "The service, for customer organizations",
    }
}

fn retention(retention: Retention) -> String {
    match retention {
        Retention::WhileAccountExists => "while the account exists".into(),
        Retention::WhileOrganizationExists => "while the organization exists".into(),
        Retention::Days(1) => "a day after it is no longer needed".into(),
        Retention::Days(days) => format!("{days} days after it is no longer needed"),
        Retention::AuditRetention => "the organization's audit retention (kept if unset)".into(),
        Retention::LegalYears(years) => format!("{years} years (legal retention)"),
    }
}

fn basis(basis: LegalBasis) -> &'static str {
    match basis {
        LegalBasis::Contract => "contract (Art. 6(1)(b))",
        LegalBasis::LegitimateInterest => "legitimate interest (Art. 6(1)(f))",
        LegalBasis::LegalObligation => "legal obligation (Art. 6(1)(c))",
        LegalBasis::ControllerInstructions => "the customer's instructions (Art. 28)",
    }
}

/// The record as Markdown.
pub fn record_markdown() -> String {
    let record = record();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Record of processing activities\n\n\
         Generated by `platform privacy record` from the data map in code (every column of \
         every table, classified next to the crate that owns it); do not edit by hand.\n\n\
         The platform is the controller of account data and the processor (Art. 28) of what \
         customer organizations keep in it."
    );
    for activity in &record.activities {
        let join = |items: Vec<String>| items.join(", ");
        let _ = writeln!(
            out,
            "\n## {}\n\n{}\n\n- Legal basis: {}\n- Categories of data: {}\n- Data subjects: {}\n\n| column | category | retention |\n|---|---|---|",
            title(activity.purpose),
            activity.description,
            join(
                activity
                    .legal_bases
                    .iter()
                    .map(|b| basis(*b).to_owned())
                    .collect()
            ),
            join(activity.categories.iter().map(words).collect()),
            join(activity.subjects.iter().map(words).collect()),
        );
        for held in &activity.data {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                held.column,
                words(&held.category),
                retention(held.retention)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n## Recipients\n\n| recipient | purpose | receives | location |\n|---|---|---|---|"
    );
    for r in record.recipients {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.name, r.purpose, r.receives, r.location
        );
    }
    let _ = writeln!(out, "\n## Technical and organizational measures\n");
    for measure in record.measures {
        let _ = writeln!(out, "- {measure}");
    }
    out
}

/// The record as JSON.
pub fn record_json() -> String {
    serde_json::to_string_pretty(&record()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The copy the README links is the generated one.
    #[test]
    fn the_committed_record_is_the_generated_one() {
        let committed = include_str!("../../../docs/record-of-processing.md");
        assert!(
            committed == super::record_markdown(),
            "docs/record-of-processing.md is stale: run \
             `cargo run -p gateway --bin platform -- privacy record > docs/record-of-processing.md`"
        );
    }

    #[test]
    fn every_personal_column_has_a_purpose_and_the_record_names_it() {
        let record = super::record_markdown();
        for table in super::data_map() {
            for column in table.columns {
                if let Some(personal) = column.personal {
                    assert!(
                        !personal.purposes.is_empty(),
                        "{}.{}",
                        table.name,
                        column.name
                    );
                    let named = format!("`{}.{}`", table.name, column.name);
                    assert!(record.contains(&named), "{named} is not in the record");
                }
            }
        }
    }
}
