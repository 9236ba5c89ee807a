//! Reading and verifying the audit trail, behind permits; and the operator's verification
//! of every chain (the `platform audit verify` command).

use crate::entity::organization;
use crate::error::Result;
use crate::service::TenancyService;
use audit::{AuditEvent, EventFilter, VerifyReport};
use authz::{Action, Permit, ResourceType};
use kernel::{OrgId, Page, PageRequest, TenantTx, TxMode};
use sea_orm::{EntityTrait, QuerySelect};
use uuid::Uuid;

impl TenancyService {
    /// One page of the organization's audit events.
    pub async fn audit_events(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        permit.ensure(tx, ResourceType::Audit, Action::Read, None)?;
        Ok(self.audit.events(tx, filter, page).await?)
    }

    /// Recomputes the organization's chain.
    pub async fn verify_audit(&self, tx: &TenantTx, permit: &Permit) -> Result<VerifyReport> {
        permit.ensure(tx, ResourceType::Audit, Action::Read, None)?;
        Ok(self.audit.verify(tx).await?)
    }

    /// Every organization's id, and the platform's own chain: for operators.
    pub async fn all_organization_ids(&self) -> Result<Vec<OrgId>> {
        let ids: Vec<Uuid> = organization::Entity::find()
            .select_only()
            .column(organization::Column::Id)
            .into_tuple()
            .all(self.db.conn())
            .await?;
        let mut all = vec![OrgId::PLATFORM];
        all.extend(ids.into_iter().map(OrgId::from_uuid));
        Ok(all)
    }

    /// Recomputes one organization's chain for an operator (the command line, which holds
    /// the database credentials anyway); never reachable through the API.
    pub async fn verify_audit_chain(&self, org: OrgId) -> Result<VerifyReport> {
        let tx = self.open(org, TxMode::Read).await?;
        let report = self.audit.verify(&tx).await?;
        tx.rollback().await?;
        Ok(report)
    }
}
