//! Grants: a permission on one record for one subject.

use super::{Authorizer, bump_version};
use crate::builtin;
use crate::entity::record_grant;
use crate::error::{Error, Result};
use crate::model::{Action, Grant, Resource, ResourceType, Subject};
use crate::permit::Permit;
use audit::NewEvent;
use kernel::{GrantId, Page, PageRequest, TenantTx};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use uuid::Uuid;

pub(super) fn grant_from_row(row: record_grant::Model) -> Result<Grant> {
    Ok(Grant {
        id: GrantId::from_uuid(row.id),
        subject: Subject::parse(&row.subject)?,
        resource_type: ResourceType::parse(&row.resource_type)?,
        resource_id: row.resource_id,
        relation: row.relation,
    })
}

impl Authorizer {
    /// Grants `relation` on one record to `subject`. The granter must hold every
    /// permission the relation gives, on that record and its children.
    #[tracing::instrument(name = "authz.grant", skip_all, err(level = "debug"))]
    pub async fn grant(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        subject: &Subject,
        record: &Resource,
        relation: &str,
    ) -> Result<Grant> {
        permit.ensure(tx, ResourceType::Grant, Action::Create, None)?;
        let template = builtin::RELATIONS
            .iter()
            .find(|t| t.name == relation && t.name != "record_owner")
            .ok_or_else(|| Error::invalid("relation", format!("unknown relation `{relation}`")))?;
        let record_id = record
            .id
            .ok_or_else(|| Error::invalid("resource", "a grant names one record"))?;
        let granter = permit.subject();
        for (typ, action) in builtin::permissions(template) {
            let (obj, parent) = if typ == record.typ.as_str() {
                (record.object(), record.parent_object())
            } else {
                (String::new(), record.object())
            };
            if !self
                .can_raw(tx, &granter, &typ, &obj, &parent, &action)
                .await?
            {
                return Err(Error::Escalation(format!(
                    "relation `{relation}` includes {action} on {typ}"
                )));
            }
        }
        let id = GrantId::generate();
        let inserted = record_grant::Entity::insert(record_grant::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(id.as_uuid()),
            subject: Set(subject.as_policy()),
            resource_type: Set(record.typ.as_str().to_owned()),
            resource_id: Set(record_id),
            relation: Set(relation.to_owned()),
            granted_by: Set(granter.as_policy()),
            created_at: Set(self.clock.now()),
        })
        .exec_without_returning(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::Conflict("this grant exists already".into()));
            }
            Err(e) => return Err(e.into()),
        }
        bump_version(tx).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("grant.created", record.typ.as_str(), Some(record_id))
                    .change("subject", None::<String>, Some(subject.as_policy()))
                    .change("relation", None::<String>, Some(relation)),
            )
            .await?;
        Ok(Grant {
            id,
            subject: subject.clone(),
            resource_type: record.typ,
            resource_id: record_id,
            relation: relation.to_owned(),
        })
    }

    /// Revokes a grant; effective on the next request.
    pub async fn revoke(&self, tx: &TenantTx, permit: &Permit, grant: GrantId) -> Result<Grant> {
        permit.ensure(tx, ResourceType::Grant, Action::Delete, None)?;
        let row = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::Id.eq(grant))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound { entity: "grant" })?;
        record_grant::Entity::delete_many()
            .filter(record_grant::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(record_grant::Column::Id.eq(grant))
            .exec(tx.conn())
            .await?;
        bump_version(tx).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("grant.revoked", &row.resource_type, Some(row.resource_id))
                    .change("subject", Some(row.subject.clone()), None::<String>)
                    .change("relation", Some(row.relation.clone()), None::<String>),
            )
            .await?;
        grant_from_row(row)
    }

    /// One grant of the organization.
    pub async fn find_grant(&self, tx: &TenantTx, id: GrantId) -> Result<Grant> {
        let row = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::Id.eq(id))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound { entity: "grant" })?;
        grant_from_row(row)
    }

    /// A page of the grants on one record, oldest first.
    pub async fn grants_on(
        &self,
        tx: &TenantTx,
        typ: ResourceType,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Grant>> {
        let select = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::ResourceType.eq(typ.as_str()))
            .filter(record_grant::Column::ResourceId.eq(id));
        let rows = kernel::page::keyset(select, record_grant::Column::Id, page)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(grant_from_row)
    }
}
