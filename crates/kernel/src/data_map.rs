//! The data map: every column of every table, classified next to the crate that owns
//! the table. A column is personal data or not; personal data names its category, the
//! purposes it is held for, the legal basis and how long it is kept. The gateway
//! collects every crate's map, a test compares it with the live catalog (so a new column
//! cannot land unclassified), and the record of processing activities (GDPR Art. 30) is
//! generated from it, never written by hand.

use serde::Serialize;

/// What kind of personal data a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Who someone is: names, and identifiers that single a person out (ids).
    Identity,
    /// How to reach someone: email addresses.
    Contact,
    /// What proves who someone is: password hashes, token digests.
    Credentials,
    /// Where a request came from: IP addresses, user agents.
    Network,
    /// What people wrote in the product: titles, bodies, comments.
    Content,
    /// What someone is charged: invoices, usage attributed to a person.
    Billing,
}

/// Why a column is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Providing the account: sign-up, log-in, organizations and memberships.
    Account,
    /// Keeping the platform and its accounts secure: authentication, throttling, keys.
    Security,
    /// Invoicing, payment and usage metering.
    Billing,
    /// Accountability: the tamper-evident audit trail of who did what.
    Audit,
    /// The product itself, run for a customer organization on its instructions.
    Service,
}

/// The legal basis (GDPR Art. 6, and Art. 28 for what we process for customers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Art. 6(1)(b): needed for the contract with the person.
    Contract,
    /// Art. 6(1)(f): our legitimate interest (security, accountability).
    LegitimateInterest,
    /// Art. 6(1)(c): a law requires keeping it (invoices).
    LegalObligation,
    /// Art. 28: processed as the customer's processor, on its documented instructions.
    ControllerInstructions,
}

/// How long a column's personal data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Retention {
    /// Until the person's account is erased.
    WhileAccountExists,
    /// Until the organization is deleted.
    WhileOrganizationExists,
    /// A number of days after the record stops being needed (expired, revoked, over).
    Days(u32),
    /// As long as the organization's audit retention setting says (kept if unset).
    AuditRetention,
    /// A legal retention period in years (commercial and tax law, for invoices).
    LegalYears(u32),
}

/// Whose data it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// People with an account.
    Users,
    /// Members of a customer organization.
    Members,
    /// People invited by email who may have no account yet.
    Invitees,
    /// Anyone who tries to sign up or log in.
    Visitors,
}

/// A personal-data column's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Personal {
    /// Its category.
    pub category: Category,
    /// Why it is held.
    pub purposes: &'static [Purpose],
    /// The legal basis.
    pub basis: LegalBasis,
    /// How long it is kept.
    pub retention: Retention,
}

/// One column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// `None` when it is not personal data.
    pub personal: Option<Personal>,
}

impl Column {
    /// A column that holds no personal data.
    pub const fn plain(name: &'static str) -> Self {
        Self {
            name,
            personal: None,
        }
    }

    /// A personal-data column.
    pub const fn personal(
        name: &'static str,
        category: Category,
        purposes: &'static [Purpose],
        basis: LegalBasis,
        retention: Retention,
    ) -> Self {
        Self {
            name,
            personal: Some(Personal {
                category,
                purposes,
                basis,
                retention,
            }),
        }
    }
}

/// One table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// The crate that owns it.
    pub owner: &'static str,
    /// What it holds, in a few words.
    pub holds: &'static str,
    /// Whose personal data it holds (empty when none).
    pub subjects: &'static [Subject],
    /// Every column.
    pub columns: &'static [Column],
}

/// Tables of no crate's domain: the migrator's bookkeeping.
pub const DATA_MAP: &[Table] = &[Table {
    name: "seaql_migrations",
    owner: "migration",
    holds: "which schema migrations were applied",
    subjects: &[],
    columns: &[Column::plain("version"), Column::plain("applied_at")],
}];

/// The number of days `table.column`'s personal data is kept once no longer needed, as
/// the map declares it: what the retention run enforces. `None` when the column is not
/// personal or not kept for a number of days.
pub fn retention_days<'a>(
    map: impl IntoIterator<Item = &'a Table>,
    table: &str,
    column: &str,
) -> Option<u32> {
    map.into_iter()
        .filter(|t| t.name == table)
        .flat_map(|t| t.columns)
        .find(|c| c.name == column)
        .and_then(|c| match c.personal?.retention {
            Retention::Days(days) => Some(days),
            _ => None,
        })
}

/// A disagreement between the data map and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A column in the database that the map does not classify.
    Unclassified {
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// A classification of a column the database does not have.
    Missing {
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// A column classified twice.
    Duplicate {
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unclassified { table, column } => {
                write!(
                    f,
                    "{table}.{column} is in the database but not in the data map"
                )
            }
            Self::Missing { table, column } => {
                write!(
                    f,
                    "{table}.{column} is in the data map but not in the database"
                )
            }
            Self::Duplicate { table, column } => {
                write!(f, "{table}.{column} is classified twice")
            }
        }
    }
}

/// Compares the map with the database's `(table, column)` pairs.
pub fn check<'a>(
    map: impl IntoIterator<Item = &'a Table>,
    catalog: &[(String, String)],
) -> Vec<Problem> {
    use std::collections::BTreeSet;
    let mut problems = Vec::new();
    let mut classified = BTreeSet::new();
    for table in map {
        for column in table.columns {
            let key = (table.name.to_owned(), column.name.to_owned());
            if !classified.insert(key.clone()) {
                problems.push(Problem::Duplicate {
                    table: key.0,
                    column: key.1,
                });
            }
        }
    }
    let present: BTreeSet<(String, String)> = catalog.iter().cloned().collect();
    for (table, column) in present.difference(&classified) {
        problems.push(Problem::Unclassified {
            table: table.clone(),
            column: column.clone(),
        });
    }
    for (table, column) in classified.difference(&present) {
        problems.push(Problem::Missing {
            table: table.clone(),
            column: column.clone(),
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &[Table] = &[Table {
        name: "people",
        owner: "test",
        holds: "people",
        subjects: &[Subject::Users],
        columns: &[
            Column::plain("id"),
            Column::personal(
                "email",
                Category::Contact,
                &[Purpose::Account],
                LegalBasis::Contract,
                Retention::WhileAccountExists,
            ),
        ],
    }];

    fn catalog(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn a_map_that_matches_the_catalog_has_no_problems() {
        assert_eq!(
            check(MAP, &catalog(&[("people", "id"), ("people", "email")])),
            []
        );
    }

    #[test]
    fn an_unclassified_column_and_a_stale_classification_are_both_named() {
        let problems = check(
            MAP,
            &catalog(&[("people", "id"), ("people", "phone"), ("notes", "body")]),
        );
        assert_eq!(
            problems,
            [
                Problem::Unclassified {
                    table: "notes".into(),
                    column: "body".into()
                },
                Problem::Unclassified {
                    table: "people".into(),
                    column: "phone".into()
                },
                Problem::Missing {
                    table: "people".into(),
                    column: "email".into()
                },
            ]
        );
    }

    #[test]
    fn a_column_classified_twice_is_a_problem() {
        let twice = [MAP[0], MAP[0]];
        let problems = check(&twice, &catalog(&[("people", "id"), ("people", "email")]));
        assert_eq!(problems.len(), 2);
        assert!(matches!(problems[0], Problem::Duplicate { .. }));
    }
}
