//! Who may do what: custom roles, their assignment, deny rules, and grants on one record.

use crate::context::{Where, write};
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::access::{Action, DenyRule, ResourceType, RoleDefinition};
use crate::graphql::types::project::Grant;
use crate::standing::WriteClass;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Resource, Subject};
use kernel::MembershipId;

#[derive(Default)]
pub struct AccessMutation;

/// One permission (of a custom role, or of an API key's scope).
#[derive(InputObject)]
pub struct PermissionInput {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The action.
    pub action: Action,
}

/// Input of `createRole`.
#[derive(InputObject)]
pub struct CreateRoleInput {
    /// Lowercase letters, digits and `_`; not a built-in name.
    pub name: String,
    /// What it is for.
    #[graphql(default)]
    pub description: String,
    /// What it allows: only permissions the creator holds.
    pub permissions: Vec<PermissionInput>,
}

/// Input of `updateRole`.
#[derive(InputObject)]
pub struct UpdateRoleInput {
    /// The custom role.
    pub name: String,
    /// Its new permissions (replacing the old ones).
    pub permissions: Vec<PermissionInput>,
}

/// Input naming a custom role.
#[derive(InputObject)]
pub struct DeleteRoleInput {
    /// The custom role.
    pub name: String,
}

/// A role after a change.
#[derive(SimpleObject)]
pub struct RolePayload {
    /// The role.
    pub role: RoleDefinition,
}

/// Result of `deleteRole`.
#[derive(SimpleObject)]
pub struct DeleteRolePayload {
    /// The deleted role's name.
    pub name: String,
}

/// Input of `assignRole` and `unassignRole`.
#[derive(InputObject)]
pub struct RoleAssignmentInput {
    /// The membership.
    pub member_id: ID,
    /// A custom role (built-in roles change with `changeMemberRole`).
    pub role: String,
}

/// Result of `assignRole` and `unassignRole`.
#[derive(SimpleObject)]
pub struct RoleAssignmentPayload {
    /// Every role the member now holds.
    pub roles: Vec<String>,
}

/// Input of `denyPermission`.
#[derive(InputObject)]
pub struct DenyPermissionInput {
    /// A role name, or a User or ApiKey id.
    pub subject: String,
    /// The resource type.
    pub resource_type: ResourceType,
    /// The action.
    pub action: Action,
}

/// Result of `denyPermission`.
#[derive(SimpleObject)]
pub struct DenyPermissionPayload {
    /// Whether the rule is in place.
    pub ok: bool,
}

/// The distinct permissions asked for (at most every type times every action, however
/// long the list sent).
fn permissions(input: Vec<PermissionInput>) -> Vec<(authz::ResourceType, authz::Action)> {
    let mut permissions: Vec<(authz::ResourceType, authz::Action)> = input
        .into_iter()
        .map(|p| (p.resource_type.into(), p.action.into()))
        .collect();
    permissions.sort();
    permissions.dedup();
    permissions
}

/// Custom roles and deny rules, as a permission resource.
fn on_roles() -> Resource {
    Resource::of_type(authz::ResourceType::Role)
}

/// Input of `grantAccess`.
#[derive(InputObject)]
pub struct GrantAccessInput {
    /// The record (a Project or Document id).
    pub resource_id: ID,
    /// A User or ApiKey id; or leave it out and name a role.
    pub subject_id: Option<ID>,
    /// A role whose holders get the relation.
    pub role: Option<String>,
    /// `project_admin`, `editor`, `reviewer` or `reader`.
    pub relation: String,
}

/// Input of `revokeAccess`.
#[derive(InputObject)]
pub struct RevokeAccessInput {
    /// The grant.
    pub grant_id: ID,
}

/// A grant after a change.
#[derive(SimpleObject)]
pub struct GrantPayload {
    /// The grant.
    pub grant: Grant,
}

#[Object]
impl AccessMutation {
    /// Composes a custom role in the active organization from permissions the caller
    /// holds.
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        input: CreateRoleInput,
    ) -> GqlResult<RolePayload> {
        let permissions = permissions(input.permissions);
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let permit = unit.permit(on_roles(), authz::Action::Create).await?;
            let role = unit
                .state
                .authz
                .create_role(
                    unit.tx,
                    &permit,
                    &input.name,
                    &input.description,
                    &permissions,
                )
                .await?;
            Ok(RolePayload { role: role.into() })
        })
        .await
    }

    /// Replaces a custom role's permissions; effective on the next request.
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        input: UpdateRoleInput,
    ) -> GqlResult<RolePayload> {
        let permissions = permissions(input.permissions);
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let permit = unit.permit(on_roles(), authz::Action::Update).await?;
            let role = unit
                .state
                .authz
                .update_role(unit.tx, &permit, &input.name, &permissions)
                .await?;
            Ok(RolePayload { role: role.into() })
        })
        .await
    }

    /// Deletes a custom role nobody holds.
    async fn delete_role(
        &self,
        ctx: &Context<'_>,
        input: DeleteRoleInput,
    ) -> GqlResult<DeleteRolePayload> {
        write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let permit = unit.permit(on_roles(), authz::Action::Delete).await?;
            let authz = &unit.state.authz;
            authz.delete_role(unit.tx, &permit, &input.name).await?;
            Ok(DeleteRolePayload { name: input.name })
        })
        .await
    }

    /// Gives a member a custom role (the caller must hold all it permits).
    async fn assign_role(
        &self,
        ctx: &Context<'_>,
        input: RoleAssignmentInput,
    ) -> GqlResult<RoleAssignmentPayload> {
        change_assignment(ctx, input, Assignment::Give).await
    }

    /// Takes a custom role from a member.
    async fn unassign_role(
        &self,
        ctx: &Context<'_>,
        input: RoleAssignmentInput,
    ) -> GqlResult<RoleAssignmentPayload> {
        change_assignment(ctx, input, Assignment::Take).await
    }

    /// Denies `action` on `resourceType` to a role or subject in the active organization,
    /// whatever else allows it.
    async fn deny_permission(
        &self,
        ctx: &Context<'_>,
        input: DenyPermissionInput,
    ) -> GqlResult<DenyPermissionPayload> {
        // A role name, or a User or ApiKey id.
        let subject = match GlobalId::subject("subject", &ID(input.subject.clone())) {
            Ok(subject) => subject.as_policy(),
            Err(_) if GlobalId::decode("subject", &ID(input.subject.clone())).is_ok() => {
                return Err(ApiError::bad_input(
                    "subject",
                    "expected a role name, User or ApiKey id",
                )
                .into());
            }
            Err(_) => input.subject,
        };
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let permit = unit.permit(on_roles(), authz::Action::Update).await?;
            unit.state
                .authz
                .deny(
                    unit.tx,
                    &permit,
                    &subject,
                    input.resource_type.into(),
                    input.action.into(),
                )
                .await?;
            Ok(DenyPermissionPayload { ok: true })
        })
        .await
    }

    /// Removes a deny rule; effective on the next request. The same delegation rules as
    /// for making one, and a rule that restricts the caller is removed by someone else.
    async fn remove_deny_rule(
        &self,
        ctx: &Context<'_>,
        input: RemoveDenyRuleInput,
    ) -> GqlResult<RemoveDenyRulePayload> {
        let id = GlobalId::expect("ruleId", &input.rule_id, NodeKind::DenyRule).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let permit = unit.permit(on_roles(), authz::Action::Update).await?;
                let removed = unit
                    .state
                    .authz
                    .remove_deny(unit.tx, &permit, id.id)
                    .await?;
                Ok(RemoveDenyRulePayload {
                    deny_rule: DenyRule::new(removed, unit.actor.org_id),
                })
            },
        )
        .await
    }

    /// Grants a relation on one project to a user, an API key or a role's holders. The
    /// caller must hold everything the relation gives.
    async fn grant_access(
        &self,
        ctx: &Context<'_>,
        input: GrantAccessInput,
    ) -> GqlResult<GrantPayload> {
        let id = GlobalId::decode("resourceId", &input.resource_id).gql()?;
        let typ = match id.kind {
            NodeKind::Project => authz::ResourceType::Project,
            NodeKind::Document => authz::ResourceType::Document,
            _ => {
                return Err(ApiError::bad_input(
                    "resourceId",
                    "expected the id of a Project or a Document",
                )
                .into());
            }
        };
        let subject = match (&input.subject_id, &input.role) {
            (Some(subject), None) => GlobalId::subject("subjectId", subject).gql()?,
            (None, Some(role)) => Subject::Role(role.clone()),
            _ => {
                return Err(
                    ApiError::bad_input("subjectId", "name either a subject or a role").into(),
                );
            }
        };
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let (record, on_grants) = unit.grant_scope(typ, id.id).await?;
                let permit = unit.permit(on_grants, authz::Action::Create).await?;
                let grant = unit
                    .state
                    .authz
                    .grant(unit.tx, &permit, &subject, &record, &input.relation)
                    .await?;
                Ok(GrantPayload {
                    grant: Grant::new(grant, unit.actor.org_id),
                })
            },
        )
        .await
    }

    /// Revokes a grant; effective on the next request.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        input: RevokeAccessInput,
    ) -> GqlResult<GrantPayload> {
        let id = GlobalId::expect("grantId", &input.grant_id, NodeKind::Grant).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Settling,
            async |unit| {
                let authz = &unit.state.authz;
                let grant = authz.find_grant(unit.tx, id.grant_id()?).await?;
                let (_, on_grants) = unit
                    .grant_scope(grant.resource_type, grant.resource_id)
                    .await?;
                let permit = unit.permit(on_grants, authz::Action::Delete).await?;
                let revoked = authz.revoke(unit.tx, &permit, id.grant_id()?).await?;
                Ok(GrantPayload {
                    grant: Grant::new(revoked, unit.actor.org_id),
                })
            },
        )
        .await
    }
}

/// Input of `removeDenyRule`.
#[derive(InputObject)]
pub struct RemoveDenyRuleInput {
    /// The rule (from `Organization.denyRules`).
    pub rule_id: ID,
}

/// What `removeDenyRule` removed.
#[derive(SimpleObject)]
pub struct RemoveDenyRulePayload {
    /// The rule, as it was.
    pub deny_rule: DenyRule,
}

/// Whether a custom role is given to a member or taken from them.
#[derive(Clone, Copy)]
enum Assignment {
    Give,
    Take,
}

async fn change_assignment(
    ctx: &Context<'_>,
    input: RoleAssignmentInput,
    change: Assignment,
) -> GqlResult<RoleAssignmentPayload> {
    if authz::builtin::is_builtin_role(&input.role) {
        return Err(
            ApiError::bad_input("role", "built-in roles change with changeMemberRole").into(),
        );
    }
    let id = GlobalId::expect("memberId", &input.member_id, NodeKind::Membership).gql()?;
    write(
        ctx,
        Where::RecordOf(&id),
        WriteClass::Ordinary,
        async |unit| {
            let member = Resource::record(authz::ResourceType::Member, id.id);
            let permit = unit.permit(member.clone(), authz::Action::Update).await?;
            let read = unit.permit(member, authz::Action::Read).await?;
            let (tx, state) = (unit.tx, unit.state);
            let member_id = MembershipId::from_uuid(id.id);
            let (membership, _) = state.tenancy.member(tx, &read, member_id).await?;
            let subject = Subject::User(membership.user_id);
            let authz = &state.authz;
            match change {
                Assignment::Give => {
                    authz
                        .assign_custom_role(tx, &permit, &subject, &input.role)
                        .await?
                }
                Assignment::Take => {
                    authz
                        .unassign_custom_role(tx, &permit, &subject, &input.role)
                        .await?
                }
            }
            let roles = authz.roles_of(tx, &subject).await?;
            Ok(RoleAssignmentPayload { roles })
        },
    )
    .await
}
