//! [`Permit`]: proof that the policy allowed one action on one resource for one caller in
//! one organization. Only [`crate::Authorizer`] constructs one, and domain services that
//! read or change a record take one, so a resolver that skips the check does not compile.

use crate::error::{Error, Result};
use crate::model::{Action, Resource, ResourceType, Subject};
use kernel::{OrgId, Principal, TenantTx};
use uuid::Uuid;

/// An allowed action. Fields are private: only this crate makes permits.
#[derive(Debug, Clone)]
pub struct Permit {
    pub(crate) org: OrgId,
    pub(crate) principal: Principal,
    pub(crate) resource: Resource,
    pub(crate) action: Action,
}

impl Permit {
    /// The organization it is valid in.
    pub fn org_id(&self) -> OrgId {
        self.org
    }

    /// Who it was issued to.
    pub fn principal(&self) -> Principal {
        self.principal
    }

    /// The subject string of the caller.
    pub fn subject(&self) -> Subject {
        self.principal.into()
    }

    /// What it allows.
    pub fn action(&self) -> Action {
        self.action
    }

    /// On what.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Checks that this permit covers `action` on `typ` (record `id`, when the permit was
    /// issued for one) in the transaction's organization. A mismatch is a bug in the
    /// caller, reported as an internal error rather than acted upon.
    pub fn ensure(
        &self,
        tx: &TenantTx,
        typ: ResourceType,
        action: Action,
        id: Option<Uuid>,
    ) -> Result<()> {
        let same_record = match (self.resource.id, id) {
            (Some(permitted), Some(asked)) => permitted == asked,
            (None, None) => true,
            _ => false,
        };
        if self.org == tx.org_id()
            && self.resource.typ == typ
            && self.action == action
            && same_record
        {
            Ok(())
        } else {
            tracing::error!(permit = ?self, asked.typ = %typ, asked.action = %action, "permit mismatch");
            Err(Error::PermitMismatch)
        }
    }
}
