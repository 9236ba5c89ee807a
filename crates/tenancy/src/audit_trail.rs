//! Reading and verifying the audit trail, behind permits; and the operator's verification
//! of every chain (the `platform audit verify` command).

use crate::entity::organization;
use crate::error::Result;
use crate::service::TenancyService;
use audit::{AuditEvent, EventFilter, VerifyReport};
use authz::{Action, Permit, ResourceType};
use kernel::{OrgId, Page, PageRequest, TenantTx, TxMode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// Whole-chain verifications requested through the API at once in this process: each
/// may read with up to four connections, and the pool is everyone's.
pub const CONCURRENT_VERIFICATIONS: usize = 2;
/// Organizations are serialized by their id's stripe among this many locks.
const VERIFICATION_STRIPES: usize = 64;

/// Where API verifications wait, before they take any connection: one at a time per
/// organization (by stripe), and [`CONCURRENT_VERIFICATIONS`] in the process.
#[derive(Debug)]
pub(crate) struct VerificationSlots {
    process: std::sync::Arc<tokio::sync::Semaphore>,
    organizations: Vec<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl Default for VerificationSlots {
    fn default() -> Self {
        Self {
            process: std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_VERIFICATIONS)),
            organizations: (0..VERIFICATION_STRIPES)
                .map(|_| std::sync::Arc::default())
                .collect(),
        }
    }
}

/// A place among the verifications running now; the next waiting one starts when it is
/// dropped.
#[derive(Debug)]
pub struct VerificationSlot {
    _organization: tokio::sync::OwnedMutexGuard<()>,
    _process: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl TenancyService {
    /// Waits for `org`'s turn to verify its chain through the API (see
    /// [`CONCURRENT_VERIFICATIONS`]); hold it around [`TenancyService::verify_audit`].
    pub async fn verification_slot(&self, org: OrgId) -> VerificationSlot {
        let slots = &self.verifications;
        let stripe = usize::try_from(org.as_uuid().as_u128() % VERIFICATION_STRIPES as u128)
            .unwrap_or_default();
        let organization = slots.organizations[stripe].clone().lock_owned().await;
        VerificationSlot {
            _organization: organization,
            // Never closed: acquiring only waits.
            _process: slots.process.clone().acquire_owned().await.ok(),
        }
    }

    /// One page of the organization's audit events, in `order`.
    pub async fn audit_events(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        filter: &EventFilter,
        (page, order): (&PageRequest, kernel::ListOrder),
    ) -> Result<Page<AuditEvent>> {
        permit.ensure(tx, ResourceType::Audit, Action::Read, None)?;
        Ok(self.audit.events(tx, filter, page, order).await?)
    }

    /// The organization's audit event `id` (`NotFound` if there is none).
    pub async fn audit_event(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: uuid::Uuid,
    ) -> Result<AuditEvent> {
        permit.ensure(tx, ResourceType::Audit, Action::Read, None)?;
        self.audit
            .event(tx, id)
            .await?
            .ok_or(crate::Error::NotFound {
                entity: "audit event",
            })
    }

    /// Records that the permit's holder exported the trail (in its own committed
    /// transaction, before the first byte leaves).
    pub async fn record_audit_export(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        format: &str,
        filter: &EventFilter,
    ) -> Result<()> {
        permit.ensure(tx, ResourceType::Audit, Action::Export, None)?;
        self.audit
            .record(
                tx,
                audit::NewEvent::new("audit.exported", "audit", None::<String>)
                    .change("format", None::<String>, Some(format))
                    .change("from", None::<String>, filter.from.map(|t| t.to_rfc3339()))
                    .change("to", None::<String>, filter.to.map(|t| t.to_rfc3339())),
            )
            .await?;
        Ok(())
    }

    /// One page of events for an export.
    pub async fn export_audit_events(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        permit.ensure(tx, ResourceType::Audit, Action::Export, None)?;
        Ok(self
            .audit
            .events(tx, filter, page, kernel::ListOrder::OldestFirst)
            .await?)
    }

    /// Sets how many days the organization keeps its events (`None`: forever).
    pub async fn set_audit_retention(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        keep_days: Option<i32>,
    ) -> Result<()> {
        permit.ensure(tx, ResourceType::Audit, Action::Delete, None)?;
        Ok(self.audit.set_retention(tx, keep_days).await?)
    }

    /// Purges the events older than the retention; the purge is itself an event.
    pub async fn purge_audit(&self, tx: &TenantTx, permit: &Permit) -> Result<audit::PurgeReport> {
        permit.ensure(tx, ResourceType::Audit, Action::Delete, None)?;
        Ok(self.audit.purge_expired(tx).await?)
    }

    /// Recomputes the organization's chain (in ranges checked concurrently, each in a
    /// read transaction of its own besides `tx`).
    pub async fn verify_audit(&self, tx: &TenantTx, permit: &Permit) -> Result<VerifyReport> {
        permit.ensure(tx, ResourceType::Audit, Action::Read, None)?;
        self.verify_in_parts(tx, self.audit.default_hashing()).await
    }

    /// Verifies `tx`'s organization in parts: on PostgreSQL with one more read
    /// transaction per core the process may use (at most four in all). SQLite verifies in
    /// one pass: its readers in one process contend (`make bench`, 1M events: 9.4 s in
    /// one pass, 10.5 s in two ranges; PostgreSQL 11.5 s and 8.4 s).
    async fn verify_in_parts(
        &self,
        tx: &TenantTx,
        hashing: audit::Hashing,
    ) -> Result<VerifyReport> {
        let parts = match self.db.backend() {
            kernel::Backend::Postgres => {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            }
            kernel::Backend::Sqlite => 1,
        };
        let mut others = Vec::with_capacity(parts - 1);
        for _ in 1..parts {
            others.push(self.open(tx.org_id(), TxMode::Read).await?);
        }
        let report = self.audit.verify_in_parts(tx, &others, hashing).await;
        for other in others {
            other.rollback().await?;
        }
        Ok(report?)
    }

    /// Every organization's id, and the platform's own chain: for operators.
    pub async fn all_organization_ids(&self) -> Result<Vec<OrgId>> {
        // In id order: the billing run numbers invoices in this order, and the same
        // input must give the same invoices.
        let ids: Vec<Uuid> = organization::Entity::find()
            .select_only()
            .column(organization::Column::Id)
            // A purged organization's tombstone has no rows left to keep or bill.
            .filter(organization::Column::PurgedAt.is_null())
            .order_by_asc(organization::Column::Id)
            .into_tuple()
            .all(self.db.conn())
            .await?;
        let mut all = vec![OrgId::PLATFORM];
        all.extend(ids.into_iter().map(OrgId::from_uuid));
        Ok(all)
    }

    /// Recomputes one organization's chain for an operator (the command line, which holds
    /// the database credentials anyway); never reachable through the API.
    pub async fn verify_audit_chain(
        &self,
        org: OrgId,
        hashing: audit::Hashing,
    ) -> Result<VerifyReport> {
        let tx = self.open(org, TxMode::Read).await?;
        let report = self.verify_in_parts(&tx, hashing).await;
        tx.rollback().await?;
        report
    }
}

impl TenancyService {
    /// Purges one organization's events older than its retention (none set: nothing), in
    /// a transaction of its own: the scheduled retention run. The purge is recorded as
    /// the system's event, like one an owner asks for.
    pub async fn purge_expired_audit(&self, org: OrgId) -> Result<audit::PurgeReport> {
        let tx = self.open(org, TxMode::Write).await?;
        let report = self.audit.purge_expired(&tx).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// The platform's own transaction, for operator commands (the command line, which
    /// holds the database credentials anyway; never reachable through the API). What
    /// changes in it is recorded in the platform's audit trail.
    pub async fn operator_tx(&self) -> Result<kernel::TenantTx> {
        self.open(OrgId::PLATFORM, TxMode::Write).await
    }

    /// Whether `user` is platform staff.
    pub async fn is_staff(&self, user: kernel::UserId) -> Result<bool> {
        Ok(crate::entity::user::Entity::find_by_id(user.as_uuid())
            .one(self.db.conn())
            .await?
            .is_some_and(|u| u.is_staff))
    }

    /// Makes the person with `email` platform staff, or not (an operator's action,
    /// recorded in the platform's audit trail).
    pub async fn set_staff(&self, email: &str, staff: bool) -> Result<()> {
        use sea_orm::{
            ActiveModelTrait, ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter,
        };
        let normalized = crate::repo::normalize_email(email.trim());
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        let row = crate::entity::user::Entity::find()
            .filter(crate::entity::user::Column::EmailNormalized.eq(&normalized))
            .one(tx.conn())
            .await?
            .ok_or(crate::Error::NotFound { entity: "user" })?;
        let (id, before) = (row.id, row.is_staff);
        let mut active = row.into_active_model();
        active.is_staff = Set(staff);
        active.update(tx.conn()).await?;
        self.audit
            .record(
                &tx,
                audit::NewEvent::new(
                    if staff {
                        "user.staff_granted"
                    } else {
                        "user.staff_revoked"
                    },
                    "user",
                    Some(id),
                )
                .change("is_staff", Some(before), Some(staff)),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An organization's transaction for the platform's own scheduled work (the billing
    /// run), acting as the system: no caller, so no permission check; never reachable
    /// through the API.
    pub async fn system_tx(&self, org: OrgId) -> Result<kernel::TenantTx> {
        self.open(org, TxMode::Write).await
    }

    /// [`system_tx`](Self::system_tx) that only reads (several may be open at once, on
    /// SQLite too).
    pub async fn system_read_tx(&self, org: OrgId) -> Result<kernel::TenantTx> {
        self.open(org, TxMode::Read).await
    }

    /// Crypto-shreds a person's personal data in every audit trail: their key and the
    /// key of their email address are deleted, so their names, emails, addresses and user
    /// agents read `[erased]` while every chain still verifies. Recorded in the
    /// platform's chain.
    #[tracing::instrument(name = "tenancy.erase_personal_data", skip_all, err(level = "debug"))]
    pub async fn erase_personal_data(&self, user: kernel::UserId) -> Result<u64> {
        let row = crate::entity::user::Entity::find_by_id(user.as_uuid())
            .one(self.db.conn())
            .await?
            .ok_or(crate::Error::NotFound { entity: "user" })?;
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        // The database lets this transaction delete this person's keys only.
        self.bind_erasing(tx.conn(), user, &row.email_normalized)
            .await?;
        let subjects = self.erasure_subjects(user, &row.email_normalized);
        let erased = self.audit.erase_person(tx.conn(), &subjects).await?;
        self.audit
            .record(
                &tx,
                audit::NewEvent::new("user.personal_data_erased", "user", Some(user)).change(
                    "keys_deleted",
                    None::<u64>,
                    Some(erased),
                ),
            )
            .await?;
        tx.commit().await?;
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewUser, TenancyService, TenancySettings};
    use audit::{AuditLog, NewEvent};
    use authz::Authorizer;
    use kernel::{Backend, Db, FakeClock, TxMode};
    use migration::{Migrator, MigratorTrait};
    use std::sync::Arc;

    async fn service() -> (TenancyService, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("tenancy-{}.db", uuid::Uuid::now_v7()));
        let db = Db::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        Migrator::up(db.conn(), None).await.unwrap();
        let clock = Arc::new(FakeClock::at(chrono::Utc::now()));
        let audit = AuditLog::new(clock.clone(), Backend::Sqlite);
        let authz = Authorizer::new(1 << 20, audit.clone(), clock.clone())
            .await
            .unwrap();
        let secret = secrecy::SecretString::from("x".repeat(40));
        let service =
            TenancyService::new(db, clock, &secret, TenancySettings::default(), authz, audit);
        (service, path)
    }

    #[tokio::test]
    async fn a_change_that_fails_after_writing_its_event_leaves_neither() {
        let (svc, path) = service().await;
        let user = svc
            .sign_up(
                NewUser {
                    email: "a@example.com".into(),
                    password: "long-enough-password".into(),
                    name: "A".into(),
                },
                &Default::default(),
            )
            .await
            .unwrap();
        let (org, _) = svc.create_organization(user.id, "Acme").await.unwrap();
        let before = svc
            .verify_audit_chain(org.id, audit::Hashing::Here)
            .await
            .unwrap();
        assert_eq!(before.checked, 1);

        // The change and its event, then a failure before commit.
        let tx = svc.open(org.id, TxMode::Write).await.unwrap();
        crate::orgs::rename_for_test(&tx, "Renamed").await.unwrap();
        svc.audit
            .record(
                &tx,
                NewEvent::new("organization.renamed", "organization", Some(org.id)),
            )
            .await
            .unwrap();
        drop(tx); // the operation fails here: nothing commits

        let after = svc
            .verify_audit_chain(org.id, audit::Hashing::Here)
            .await
            .unwrap();
        assert_eq!(
            after.checked, 1,
            "the event was rolled back with the change"
        );
        assert!(after.broken.is_none());
        let tx = svc.open(org.id, TxMode::Read).await.unwrap();
        let name = crate::orgs::name_for_test(&tx).await.unwrap();
        assert_eq!(name, "Acme", "the change was rolled back with the event");
        drop(tx);
        let _ = std::fs::remove_file(path);
    }
}
