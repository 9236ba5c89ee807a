//! Demo data: two organizations with a few people and projects each, created through the same
//! services the API uses. Running it again changes nothing.

use crate::startup::AppState;
use authz::{Action, Resource, ResourceType};
use kernel::{Principal, TxMode};
use tenancy::{NewUser, Role};

/// Every demo account's password.
pub const DEMO_PASSWORD: &str = "demo-password";

/// Demo people: (email, name, organization slug, role).
pub const DEMO_PEOPLE: &[(&str, &str, &str, Role)] = &[
    ("alice@acme.test", "Alice Owner", "acme", Role::Owner),
    ("bob@acme.test", "Bob Admin", "acme", Role::Admin),
    ("carol@acme.test", "Carol Member", "acme", Role::Member),
    ("dave@acme.test", "Dave Viewer", "acme", Role::Viewer),
    ("erin@globex.test", "Erin Owner", "globex", Role::Owner),
    (
        "frank@globex.test",
        "Frank Billing",
        "globex",
        Role::BillingAdmin,
    ),
    (
        "grace@globex.test",
        "Grace Auditor",
        "globex",
        Role::Auditor,
    ),
];

/// Demo organizations: (slug, name).
pub const DEMO_ORGS: &[(&str, &str)] = &[("acme", "Acme"), ("globex", "Globex")];

/// Whether anything was created.
#[derive(Debug, PartialEq, Eq)]
pub enum Seeded {
    /// The demo data was created now.
    Created,
    /// It was there already.
    AlreadyPresent,
}

/// Demo projects: (organization slug, owner email, name, description).
pub const DEMO_PROJECTS: &[(&str, &str, &str, &str)] = &[
    (
        "acme",
        "alice@acme.test",
        "Website relaunch",
        "New site, new CMS, same domain.",
    ),
    (
        "acme",
        "alice@acme.test",
        "Mobile app",
        "iOS and Android clients.",
    ),
    (
        "globex",
        "erin@globex.test",
        "Q3 compliance review",
        "Evidence for the auditors.",
    ),
];

/// Creates the demo organizations, people and projects unless they exist.
pub async fn seed(state: &AppState) -> anyhow::Result<Seeded> {
    let tenancy = &state.tenancy;
    let mut users = Vec::new();
    for (email, name, _, _) in DEMO_PEOPLE {
        match tenancy
            .sign_up(NewUser {
                email: (*email).to_owned(),
                password: DEMO_PASSWORD.to_owned(),
                name: (*name).to_owned(),
            })
            .await
        {
            Ok(user) => users.push(user),
            Err(tenancy::Error::Conflict(_)) => return Ok(Seeded::AlreadyPresent),
            Err(e) => return Err(e.into()),
        }
    }
    for (slug, org_name) in DEMO_ORGS {
        let people: Vec<_> = DEMO_PEOPLE
            .iter()
            .zip(&users)
            .filter(|((_, _, org, _), _)| org == slug)
            .collect();
        let Some(((_, _, _, _), owner)) = people.first() else {
            continue;
        };
        let (org, _) = tenancy.create_organization(owner.id, org_name).await?;
        for ((email, _, _, role), user) in people.iter().skip(1) {
            let (tx, actor) = tenancy
                .enter(Principal::User(owner.id), org.id, TxMode::Write)
                .await?;
            let permit = tenancy
                .authz()
                .check(
                    &tx,
                    actor.principal,
                    Resource::of_type(ResourceType::Invitation),
                    Action::Create,
                )
                .await?;
            let issued = tenancy.invite(&tx, &permit, email, *role).await?;
            tx.commit().await?;
            tenancy.accept_invitation(user.id, &issued.token).await?;
        }
        for (_, owner_email, name, description) in DEMO_PROJECTS.iter().filter(|p| p.0 == *slug) {
            let Some((_, creator)) = people.iter().find(|((email, ..), _)| email == owner_email)
            else {
                continue;
            };
            let (tx, actor) = tenancy
                .enter(Principal::User(creator.id), org.id, TxMode::Write)
                .await?;
            let permit = state
                .authz
                .check(
                    &tx,
                    actor.principal,
                    Resource::of_type(ResourceType::Project),
                    Action::Create,
                )
                .await?;
            let new = core_domain::NewProject {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                required_approvals: None,
            };
            state.projects.create(&tx, &permit, new).await?;
            tx.commit().await?;
        }
    }
    Ok(Seeded::Created)
}
