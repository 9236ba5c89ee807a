//! Decisions: may this subject do this action on this resource (with the reasons, for
//! `explain`).

use super::{Authorizer, request};
use crate::error::{Error, Result};
use crate::model::{Action, Effect, Explanation, Permission, Resource, Rule, Subject};
use crate::permit::Permit;
use kernel::{Principal, TenantTx};

impl Authorizer {
    /// A permit for `principal` to do `action` on `resource` in the transaction's
    /// organization, or [`Error::Denied`].
    #[tracing::instrument(name = "authz.check", skip_all, fields(action = %action, resource.type = %resource.typ), err(level = "debug"))]
    pub async fn check(
        &self,
        tx: &TenantTx,
        principal: Principal,
        resource: Resource,
        action: Action,
    ) -> Result<Permit> {
        if self.can(tx, &principal.into(), &resource, action).await? {
            Ok(Permit {
                org: tx.org_id(),
                principal,
                resource,
                action,
            })
        } else {
            Err(Error::Denied {
                action: action.to_string(),
                resource: resource.typ.to_string(),
            })
        }
    }

    /// Whether `subject` may do `action` on `resource` (for UIs: `viewerCan`).
    pub async fn can(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        resource: &Resource,
        action: Action,
    ) -> Result<bool> {
        let enforcer = self.enforcer(tx).await?;
        enforcer.enforce(&request(tx.org_id(), subject, resource, action))
    }

    /// The decision and the rules behind it.
    pub async fn explain(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        resource: &Resource,
        action: Action,
    ) -> Result<Explanation> {
        let enforcer = self.enforcer(tx).await?;
        let (allowed, rows) = enforcer.explain(&request(tx.org_id(), subject, resource, action))?;
        let rules = rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [sub, dom, typ, act, eft] => Some(Rule {
                    subject: sub.clone(),
                    permission: Permission {
                        resource_type: typ.clone(),
                        action: act.clone(),
                    },
                    effect: Effect::parse(eft).ok()?,
                    built_in: dom == "*",
                }),
                _ => None,
            })
            .collect();
        Ok(Explanation { allowed, rules })
    }

    pub(super) async fn can_raw(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        typ: &str,
        obj: &str,
        parent: &str,
        action: &str,
    ) -> Result<bool> {
        let enforcer = self.enforcer(tx).await?;
        enforcer.enforce(&[
            subject.as_policy(),
            tx.org_id().to_string(),
            typ.to_owned(),
            obj.to_owned(),
            parent.to_owned(),
            String::new(),
            action.to_owned(),
        ])
    }
}
