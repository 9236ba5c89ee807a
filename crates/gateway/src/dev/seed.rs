//! Demo data: two organizations with a few people, projects and documents in every
//! workflow state, created through the same services (and permission checks) the API
//! uses. Running it again changes nothing.

use crate::catalog::import_catalog;
use crate::startup::AppState;
use authz::{Action, Resource, ResourceType};
use core_domain::Transition;
use kernel::{DocumentId, OrgId, Principal, ProjectId, TxMode, UserId};
use std::collections::HashMap;
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

/// The demo catalog (`catalog/demo.json`), imported by every seed run (importing it again
/// changes nothing).
pub const DEMO_CATALOG: &str = include_str!("../../../../catalog/demo.json");

/// Demo subscriptions: (organization slug, subscribing person, plan, time zone).
pub const DEMO_SUBSCRIPTIONS: &[(&str, &str, &str, &str)] = &[
    ("acme", "alice@acme.test", "team", "Europe/Berlin"),
    (
        "globex",
        "frank@globex.test",
        "business",
        "America/New_York",
    ),
];

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

/// A demo document: (project, author email, title, workflow steps with who takes each).
pub type DemoDocument = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(Transition, &'static str)],
);

/// Demo documents: (project, author email, title, the steps that bring it to its
/// status with who takes each). Together they show every workflow state.
pub const DEMO_DOCUMENTS: &[DemoDocument] = &[
    ("Website relaunch", "carol@acme.test", "Homepage copy", &[]),
    (
        "Website relaunch",
        "carol@acme.test",
        "Navigation structure",
        &[(Transition::Submit, "carol@acme.test")],
    ),
    (
        "Website relaunch",
        "carol@acme.test",
        "Brand guidelines",
        &[
            (Transition::Submit, "carol@acme.test"),
            (Transition::Approve, "bob@acme.test"),
        ],
    ),
    (
        "Website relaunch",
        "carol@acme.test",
        "Cookie banner text",
        &[
            (Transition::Submit, "carol@acme.test"),
            (Transition::RequestChanges, "bob@acme.test"),
        ],
    ),
    (
        "Website relaunch",
        "alice@acme.test",
        "Launch announcement",
        &[
            (Transition::Submit, "alice@acme.test"),
            (Transition::Approve, "bob@acme.test"),
            (Transition::Publish, "alice@acme.test"),
        ],
    ),
    (
        "Mobile app",
        "alice@acme.test",
        "Old release checklist",
        &[
            (Transition::Submit, "alice@acme.test"),
            (Transition::Approve, "bob@acme.test"),
            (Transition::Publish, "alice@acme.test"),
            (Transition::Archive, "alice@acme.test"),
        ],
    ),
    (
        "Q3 compliance review",
        "erin@globex.test",
        "Access review evidence",
        &[(Transition::Submit, "erin@globex.test")],
    ),
    (
        "Q3 compliance review",
        "erin@globex.test",
        "Vendor list",
        &[
            (Transition::Submit, "erin@globex.test"),
            (Transition::Approve, "grace@globex.test"),
            (Transition::Publish, "erin@globex.test"),
        ],
    ),
];

/// Per-record grants of the demo: (project, email, relation). Grace audits Globex and
/// reviews its compliance project through a grant on that project alone.
pub const DEMO_GRANTS: &[(&str, &str, &str)] =
    &[("Q3 compliance review", "grace@globex.test", "reviewer")];

/// The demo data processing agreement's text.
const DEMO_DPA: &str = "# Data processing agreement (demo)\n\n\
The platform processes the organization's data only on its documented instructions, \
keeps it confidential, secures it (tenant separation, encryption of personal values in \
the audit trail, least privilege), uses only the subprocessors listed, helps answer data \
subjects' requests, and deletes or returns the data when the service ends.\n";

/// Creates the demo organizations, people and projects unless they exist.
pub async fn seed(state: &AppState) -> anyhow::Result<Seeded> {
    let tenancy = &state.tenancy;
    for line in import_catalog(state, &billing::CatalogFile::parse(DEMO_CATALOG)?).await? {
        tracing::info!("catalog: {line}");
    }
    let mut orgs: HashMap<&str, OrgId> = HashMap::new();
    let mut projects: HashMap<&str, (OrgId, ProjectId)> = HashMap::new();
    let mut users = Vec::new();
    for (email, name, _, _) in DEMO_PEOPLE {
        match tenancy
            .sign_up(
                NewUser {
                    email: (*email).to_owned(),
                    password: DEMO_PASSWORD.to_owned(),
                    name: (*name).to_owned(),
                },
                &Default::default(),
            )
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
        orgs.insert(*slug, org.id);
        for ((email, _, _, role), user) in people.iter().skip(1) {
            let (tx, permit) = permitted(
                state,
                owner.id,
                org.id,
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
            let (tx, permit) = permitted(
                state,
                creator.id,
                org.id,
                Resource::of_type(ResourceType::Project),
                Action::Create,
            )
            .await?;
            let new = core_domain::NewProject {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                required_approvals: None,
            };
            let project = state.projects.create(&tx, &permit, new).await?;
            tx.commit().await?;
            projects.insert(*name, (org.id, project.id));
        }
    }
    let people: HashMap<&str, UserId> = DEMO_PEOPLE
        .iter()
        .zip(&users)
        .map(|((email, ..), user)| (*email, user.id))
        .collect();
    let person = |email: &str| {
        people
            .get(email)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no demo person {email}"))
    };
    let project = |name: &str| {
        projects
            .get(name)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no demo project {name}"))
    };
    for (project_name, email, relation) in DEMO_GRANTS {
        let (org, project_id) = project(project_name)?;
        let owner = DEMO_PROJECTS
            .iter()
            .find(|p| p.2 == *project_name)
            .map(|p| p.1)
            .unwrap_or_default();
        let on_grants = Resource::of_type(ResourceType::Grant)
            .with_parent(ResourceType::Project, project_id.into());
        let (tx, permit) = permitted(state, person(owner)?, org, on_grants, Action::Create).await?;
        let owner_id = state.projects.owner_of(&tx, project_id).await?;
        let record = Resource::record(ResourceType::Project, project_id.into())
            .with_owner(authz::Subject::User(owner_id));
        let subject = authz::Subject::User(person(email)?);
        state
            .authz
            .grant(&tx, &permit, &subject, &record, relation)
            .await?;
        tx.commit().await?;
    }
    for (project_name, author, title, steps) in DEMO_DOCUMENTS {
        let (org, project_id) = project(project_name)?;
        let document = create_document(state, org, person(author)?, project_id, title).await?;
        for (transition, by) in *steps {
            document_step(state, org, person(by)?, document, *transition).await?;
        }
    }
    // A demo processor agreement, accepted by each organization's owner.
    let agreement = tenancy
        .publish_dpa(
            "demo-1",
            DEMO_DPA,
            vec![tenancy::dpa::Subprocessor {
                name: "Demo Hosting GmbH".into(),
                purpose: "runs the servers and the database".into(),
                location: "Frankfurt, Germany".into(),
            }],
        )
        .await?;
    for (slug, _) in DEMO_ORGS {
        let Some(((email, ..), _)) = DEMO_PEOPLE
            .iter()
            .zip(&users)
            .find(|((_, _, org, _), _)| org == slug)
        else {
            continue;
        };
        let org = *orgs
            .get(slug)
            .ok_or_else(|| anyhow::anyhow!("no demo organization {slug}"))?;
        let (tx, actor) = tenancy
            .enter(
                &tenancy::Caller::trusted(kernel::Principal::User(person(email)?)),
                org,
                kernel::TxMode::Write,
            )
            .await?;
        tenancy.accept_dpa(&tx, &actor, &agreement.version).await?;
        tx.commit().await?;
    }
    for (slug, email, plan, zone) in DEMO_SUBSCRIPTIONS {
        let org = *orgs
            .get(slug)
            .ok_or_else(|| anyhow::anyhow!("no demo organization {slug}"))?;
        let (tx, permit) = permitted(
            state,
            person(email)?,
            org,
            Resource::of_type(ResourceType::Billing),
            Action::Update,
        )
        .await?;
        state
            .subscriptions
            .change_plan(&tx, &permit, plan, Some(zone))
            .await?;
        tx.commit().await?;
    }
    Ok(Seeded::Created)
}

/// The user's write transaction in the organization and their permit for `action` on
/// `resource`: what a resolver gets before it calls a service.
async fn permitted(
    state: &AppState,
    user: UserId,
    org: OrgId,
    resource: Resource,
    action: Action,
) -> anyhow::Result<(kernel::TenantTx, authz::Permit)> {
    let (tx, actor) = state
        .tenancy
        .enter(
            &tenancy::Caller::trusted(Principal::User(user)),
            org,
            TxMode::Write,
        )
        .await?;
    let permit = state
        .authz
        .check(&tx, actor.principal, resource, action)
        .await?;
    Ok((tx, permit))
}

async fn create_document(
    state: &AppState,
    org: OrgId,
    author: UserId,
    project: ProjectId,
    title: &str,
) -> anyhow::Result<DocumentId> {
    let in_project = Resource::of_type(ResourceType::Document)
        .with_parent(ResourceType::Project, project.as_uuid());
    let (tx, permit) = permitted(state, author, org, in_project, Action::Create).await?;
    let new = core_domain::NewDocument {
        project_id: project,
        title: title.to_owned(),
        body: format!("# {title}\n\nA demo document."),
    };
    let document = state.documents.create(&tx, &permit, new).await?;
    tx.commit().await?;
    Ok(document.id)
}

async fn document_step(
    state: &AppState,
    org: OrgId,
    by: UserId,
    document: DocumentId,
    transition: Transition,
) -> anyhow::Result<()> {
    let (tx, actor) = state
        .tenancy
        .enter(
            &tenancy::Caller::trusted(Principal::User(by)),
            org,
            TxMode::Write,
        )
        .await?;
    let resource = state.documents.resource(&tx, document).await?;
    let permit = state
        .authz
        .check(&tx, actor.principal, resource, transition.required_action())
        .await?;
    state
        .documents
        .transition(&tx, &permit, document, transition, None)
        .await?;
    tx.commit().await?;
    Ok(())
}
