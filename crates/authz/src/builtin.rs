//! Built-in roles and record relations: templates stored once, in code, and shared by
//! every organization. Each check scans only these plus the organization's own rules,
//! well under a hundred rows.
//!
//! | role | permits |
//! |---|---|
//! | `owner` | everything |
//! | `admin` | read and update the organization; everything on members, invitations, API keys, webhooks, roles, grants, projects and documents; read and export the audit trail |
//! | `member` | read the organization and its members; read and create projects and documents |
//! | `billing_admin` | read the organization and its members; everything on billing |
//! | `auditor` | read the organization and its members; read and export the audit trail |
//! | `viewer` | read the organization, its members, projects and documents |
//!
//! Record relations, granted on one record (and inherited by its children):
//!
//! | relation | permits |
//! |---|---|
//! | `project_admin` | everything on the project and its documents, and granting on them |
//! | `editor` | read the project; read, create, update and submit documents |
//! | `reviewer` | read the project; read and review documents |
//! | `reader` | read the project and its documents |
//! | `record_owner` | held by a record's owner: read, update, submit and delete it |

use crate::model::{Action, ResourceType};

use Action::{Create, Delete, Export, Read, Review, Submit, Update};
use ResourceType::{
    ApiKey, Audit, Billing, Document, Grant, Invitation, Member, Organization, Project, Role,
    Webhook,
};

/// A built-in role or relation: its name, description and allowed (type, actions).
pub struct Template {
    /// The name.
    pub name: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// `None` type means every type and every action (the owner).
    pub allows: &'static [(Option<ResourceType>, &'static [Action])],
}

/// Every action on the type: one `*` row instead of one row per action.
const ALL_ACTIONS: &[Action] = &[];

/// The role that holds everything, including naming other owners: the root of trust,
/// which nothing delegated (deny rules, keys) may restrict or be.
pub const OWNER: &str = "owner";

/// Organization-wide roles.
pub const ROLES: &[Template] = &[
    Template {
        name: OWNER,
        description: "Everything, including naming other owners.",
        allows: &[(None, &[])],
    },
    Template {
        name: "admin",
        description: "Manages people, keys, webhooks, roles, grants and all records; reads the audit trail.",
        allows: &[
            (Some(Organization), &[Read, Update]),
            (Some(Member), ALL_ACTIONS),
            (Some(Invitation), ALL_ACTIONS),
            (Some(ApiKey), ALL_ACTIONS),
            (Some(Webhook), ALL_ACTIONS),
            (Some(Role), ALL_ACTIONS),
            (Some(Grant), ALL_ACTIONS),
            (Some(Project), ALL_ACTIONS),
            (Some(Document), ALL_ACTIONS),
            (Some(Audit), &[Read, Export]),
        ],
    },
    Template {
        name: "member",
        description: "Works with projects and documents.",
        allows: &[
            (Some(Organization), &[Read]),
            (Some(Member), &[Read]),
            (Some(Project), &[Read, Create]),
            (Some(Document), &[Read, Create]),
        ],
    },
    Template {
        name: "billing_admin",
        description: "Manages the subscription, invoices and payment.",
        allows: &[
            (Some(Organization), &[Read]),
            (Some(Member), &[Read]),
            (Some(Billing), ALL_ACTIONS),
        ],
    },
    Template {
        name: "auditor",
        description: "Reads and exports the audit trail.",
        allows: &[
            (Some(Organization), &[Read]),
            (Some(Member), &[Read]),
            (Some(Audit), &[Read, Export]),
        ],
    },
    Template {
        name: "viewer",
        description: "Reads the organization's records.",
        allows: &[
            (Some(Organization), &[Read]),
            (Some(Member), &[Read]),
            (Some(Project), &[Read]),
            (Some(Document), &[Read]),
        ],
    },
];

/// Relations granted on single records.
pub const RELATIONS: &[Template] = &[
    Template {
        name: "project_admin",
        description: "Everything on the project and its documents.",
        allows: &[
            (Some(Project), ALL_ACTIONS),
            (Some(Document), ALL_ACTIONS),
            (Some(Grant), &[Read, Create, Delete]),
        ],
    },
    Template {
        name: "editor",
        description: "Writes documents.",
        allows: &[
            (Some(Project), &[Read]),
            (Some(Document), &[Read, Create, Update, Submit]),
        ],
    },
    Template {
        name: "reviewer",
        description: "Reviews documents.",
        allows: &[(Some(Project), &[Read]), (Some(Document), &[Read, Review])],
    },
    Template {
        name: "reader",
        description: "Reads the project and its documents.",
        allows: &[(Some(Project), &[Read]), (Some(Document), &[Read])],
    },
    Template {
        name: "record_owner",
        description: "Held by a record's owner.",
        allows: &[
            (Some(Project), &[Read, Update]),
            (Some(Document), &[Read, Update, Submit, Delete]),
        ],
    },
];

/// Whether `name` is a built-in role.
pub fn is_builtin_role(name: &str) -> bool {
    ROLES.iter().any(|t| t.name == name)
}

/// Whether `name` is a record relation.
pub fn is_relation(name: &str) -> bool {
    RELATIONS.iter().any(|t| t.name == name)
}

/// The (type, action) pairs a template allows, `("*", "*")` for the owner.
pub fn permissions(template: &Template) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    for (typ, actions) in template.allows {
        match typ {
            None => rows.push(("*".to_owned(), "*".to_owned())),
            Some(typ) if actions.is_empty() => rows.push((typ.as_str().to_owned(), "*".to_owned())),
            Some(typ) => {
                for action in *actions {
                    rows.push((typ.as_str().to_owned(), action.as_str().to_owned()));
                }
            }
        }
    }
    rows
}

/// Every built-in `p` row: `[subject, domain "*", type, action, "allow"]`.
pub fn policy_rows() -> Vec<Vec<String>> {
    ROLES
        .iter()
        .chain(RELATIONS)
        .flat_map(|template| {
            permissions(template).into_iter().map(move |(typ, action)| {
                vec![
                    template.name.to_owned(),
                    "*".to_owned(),
                    typ,
                    action,
                    "allow".to_owned(),
                ]
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_stay_well_under_a_hundred_rows() {
        let rows = policy_rows();
        assert!(rows.len() < 100, "{} rows", rows.len());
        assert!(
            rows.iter()
                .any(|r| r[0] == "owner" && r[2] == "*" && r[3] == "*")
        );
        assert!(is_builtin_role("auditor") && !is_builtin_role("editor"));
        assert!(is_relation("editor") && !is_relation("owner"));
    }
}
