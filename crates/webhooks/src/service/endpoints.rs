//! An organization's endpoints, managed by its admins: created (the secret shown once),
//! changed, rotated, deleted, listed.

use super::{MAX_DESCRIPTION_CHARS, MAX_ENDPOINTS, PREVIOUS_SECRET_SIGNS, Webhooks};
use crate::catalog::{self};
use crate::egress::{self};
use crate::entity::{webhook_delivery, webhook_endpoint};
use crate::error::{Error, Result};
use crate::model::{Endpoint, EndpointChange, NewEndpoint};
use crate::signing;
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use kernel::page::keyset_in;
use kernel::{ListOrder, Page, PageRequest, TenantTx};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use serde_json::Value as Json;
use uuid::Uuid;

/// A URL as the audit trail keeps it: its origin only (a path or query may carry a
/// token, and the trail outlives the endpoint and is read by auditors).
pub(super) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => "[unparsable]".into(),
    }
}

pub(super) fn checked_event_types(types: &[String]) -> Result<Vec<String>> {
    if types.is_empty() {
        return Err(Error::invalid("eventTypes", "name at least one event type"));
    }
    if types.len() > catalog::CATALOG.len() {
        return Err(Error::invalid(
            "eventTypes",
            format!("at most {} event types", catalog::CATALOG.len()),
        ));
    }
    let mut checked = Vec::with_capacity(types.len());
    for name in types {
        let Some(kind) = catalog::named(name) else {
            let shown: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(Error::invalid(
                "eventTypes",
                format!("`{shown}` is not in the catalog"),
            ));
        };
        if !checked.contains(&kind.name.to_owned()) {
            checked.push(kind.name.to_owned());
        }
    }
    checked.sort();
    Ok(checked)
}

pub(super) fn checked_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "description",
            "control characters are not allowed",
        ));
    }
    Ok(description.to_owned())
}

pub(super) async fn find_endpoint(tx: &TenantTx, id: Uuid) -> Result<webhook_endpoint::Model> {
    tx.select::<webhook_endpoint::Entity>()
        .filter(webhook_endpoint::Column::Id.eq(id))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound {
            entity: "webhook endpoint",
        })
}

/// Takes the organization's turn at its endpoints until the transaction ends: creations
/// (which count them), deletions and fan-outs (which make deliveries to them) of one
/// organization run one after the other. Taken first, before any row lock, by all three.
pub(crate) async fn lock_endpoints(tx: &TenantTx) -> Result<()> {
    tx.lock(&format!("webhook_endpoints:{}", tx.org_id()))
        .await?;
    Ok(())
}

pub(super) fn parse_types(row: &webhook_endpoint::Model) -> Result<Vec<String>> {
    serde_json::from_str(&row.event_types)
        .map_err(|_| Error::Corrupt(format!("endpoint {}: event types", row.id)))
}

pub(super) fn endpoint_from_row(row: webhook_endpoint::Model) -> Result<Endpoint> {
    let event_types = parse_types(&row)?;
    Ok(Endpoint {
        id: row.id,
        url: row.url,
        description: row.description,
        event_types,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        failing_since: row.failing_since,
        previous_secret_until: row.previous_secret_until,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl Webhooks {
    /// Makes an endpoint; returns it with its secret (shown only now).
    #[tracing::instrument(name = "webhooks.create_endpoint", skip_all, err(level = "debug"))]
    pub async fn create_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        new: NewEndpoint<'_>,
    ) -> Result<(Endpoint, String)> {
        permit.ensure(tx, ResourceType::Webhook, Action::Create, None)?;
        let url = self.checked_url(new.url)?;
        let event_types = checked_event_types(new.event_types)?;
        let description = checked_description(new.description)?;
        // Concurrent creations in one organization count one after the other.
        lock_endpoints(tx).await?;
        let held = tx
            .select::<webhook_endpoint::Entity>()
            .count(tx.conn())
            .await?;
        if held >= MAX_ENDPOINTS {
            return Err(Error::TooMany(kernel::TooMany {
                what: "webhook endpoints",
                max: MAX_ENDPOINTS,
            }));
        }
        let now = self.clock.now();
        let secret = signing::new_secret();
        let row = webhook_endpoint::Entity::insert(webhook_endpoint::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            url: Set(url),
            description: Set(description),
            event_types: Set(Json::from(event_types).to_string()),
            secret: Set(secret.clone()),
            previous_secret: Set(None),
            previous_secret_until: Set(None),
            enabled: Set(true),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        // The organization's events are followed from here on (an existing cursor stays:
        // an endpoint only receives events from its own creation on).
        let head = self.audit.head_seq(tx).await?;
        tx.conn()
            .execute_raw(tx.statement(
                "INSERT INTO webhook_cursors (organization_id, last_seq, updated_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (organization_id) DO NOTHING",
                vec![tx.org_id().as_uuid().into(), head.into(), now.into()],
            ))
            .await?;
        let endpoint = endpoint_from_row(row)?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "webhook_endpoint.created",
                    "webhook_endpoint",
                    Some(endpoint.id),
                )
                .change("url", None::<String>, Some(redacted(&endpoint.url)))
                .change(
                    "event_types",
                    None::<Vec<String>>,
                    Some(endpoint.event_types.clone()),
                ),
            )
            .await?;
        Ok((endpoint, secret))
    }

    /// Changes an endpoint. Enabling it again clears its failure streak.
    #[tracing::instrument(name = "webhooks.update_endpoint", skip_all, err(level = "debug"))]
    pub async fn update_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
        change: EndpointChange,
    ) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Update, Some(id))?;
        let row = find_endpoint(tx, id).await?;
        let before = endpoint_from_row(row.clone())?;
        let mut update = row.into_active_model();
        let mut event = NewEvent::new("webhook_endpoint.updated", "webhook_endpoint", Some(id));
        if let Some(url) = change.url {
            let url = self.checked_url(&url)?;
            event = event.change("url", Some(redacted(&before.url)), Some(redacted(&url)));
            update.url = Set(url);
            // A new receiver starts without the old one's failures.
            update.failing_since = Set(None);
        }
        if let Some(types) = change.event_types {
            let types = checked_event_types(&types)?;
            event = event.change(
                "event_types",
                Some(before.event_types.clone()),
                Some(types.clone()),
            );
            update.event_types = Set(Json::from(types).to_string());
        }
        if let Some(description) = change.description {
            let description = checked_description(&description)?;
            // Free text an admin wrote (it may name people): the trail says it changed,
            // not what it says.
            event = event.change("description_changed", None::<bool>, Some(true));
            update.description = Set(description);
        }
        if let Some(enabled) = change.enabled {
            event = event.change("enabled", Some(before.enabled), Some(enabled));
            update.enabled = Set(enabled);
            if enabled {
                update.disabled_reason = Set(None);
                update.failing_since = Set(None);
            }
        }
        update.updated_at = Set(self.clock.now());
        let row = update.update(tx.conn()).await?;
        self.audit.record(tx, event).await?;
        endpoint_from_row(row)
    }

    /// Deletes an endpoint and its delivery log; its pending deliveries are not made.
    /// With the last endpoint the organization's events stop being followed.
    #[tracing::instrument(name = "webhooks.delete_endpoint", skip_all, err(level = "debug"))]
    pub async fn delete_endpoint(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
    ) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Delete, Some(id))?;
        // Before anything is deleted: a fan-out making deliveries to this endpoint
        // finishes first (or waits), so none names it once it is gone. Then the
        // endpoint's row before its deliveries' rows, the order in which an attempt being
        // recorded locks them (the other order deadlocks with it).
        lock_endpoints(tx).await?;
        let mut row = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Id.eq(id));
        if tx.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
            row = row.lock_exclusive();
        }
        let row = row.one(tx.conn()).await?.ok_or(Error::NotFound {
            entity: "webhook endpoint",
        })?;
        let endpoint = endpoint_from_row(row)?;
        webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(webhook_delivery::Column::EndpointId.eq(id))
            .exec(tx.conn())
            .await?;
        webhook_endpoint::Entity::delete_many()
            .filter(webhook_endpoint::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(webhook_endpoint::Column::Id.eq(id))
            .exec(tx.conn())
            .await?;
        // The last one gone: the organization is no longer followed (its messages, which
        // no delivery names any more, go with the cursor).
        let left = tx
            .select::<webhook_endpoint::Entity>()
            .count(tx.conn())
            .await?;
        if left == 0 {
            for sql in [
                "DELETE FROM webhook_messages WHERE organization_id = $1",
                "DELETE FROM webhook_cursors WHERE organization_id = $1",
            ] {
                tx.conn()
                    .execute_raw(tx.statement(sql, vec![tx.org_id().as_uuid().into()]))
                    .await?;
            }
        }
        self.audit
            .record(
                tx,
                NewEvent::new("webhook_endpoint.deleted", "webhook_endpoint", Some(id)).change(
                    "url",
                    Some(redacted(&endpoint.url)),
                    None::<String>,
                ),
            )
            .await?;
        Ok(endpoint)
    }

    /// Gives an endpoint a new secret; returns it. For [`PREVIOUS_SECRET_SIGNS`] after,
    /// deliveries carry a signature with the previous secret too, so a receiver can
    /// switch without losing a message.
    #[tracing::instrument(name = "webhooks.rotate_secret", skip_all, err(level = "debug"))]
    pub async fn rotate_secret(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: Uuid,
    ) -> Result<(Endpoint, String)> {
        permit.ensure(tx, ResourceType::Webhook, Action::Update, Some(id))?;
        let row = find_endpoint(tx, id).await?;
        let secret = signing::new_secret();
        let now = self.clock.now();
        let previous = row.secret.clone();
        let mut update = row.into_active_model();
        update.secret = Set(secret.clone());
        update.previous_secret = Set(Some(previous));
        update.previous_secret_until = Set(Some(now + PREVIOUS_SECRET_SIGNS));
        update.updated_at = Set(now);
        let row = update.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "webhook_endpoint.secret_rotated",
                    "webhook_endpoint",
                    Some(id),
                ),
            )
            .await?;
        Ok((endpoint_from_row(row)?, secret))
    }

    /// One page of the organization's endpoints, oldest first.
    pub async fn endpoints(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<Endpoint>> {
        permit.ensure(tx, ResourceType::Webhook, Action::Read, None)?;
        let rows = keyset_in(
            tx.select::<webhook_endpoint::Entity>(),
            webhook_endpoint::Column::Id,
            page,
            ListOrder::OldestFirst,
        )
        .all(tx.conn())
        .await?;
        let page = Page::from_overfetch(rows, page);
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(endpoint_from_row)
                .collect::<Result<_>>()?,
            has_previous: page.has_previous,
            has_next: page.has_next,
        })
    }

    /// The organization's endpoint `id`.
    pub async fn endpoint(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<Endpoint> {
        permit.ensure(tx, ResourceType::Webhook, Action::Read, Some(id))?;
        endpoint_from_row(find_endpoint(tx, id).await?)
    }

    pub(super) fn checked_url(&self, url: &str) -> Result<String> {
        self.egress
            .check_url(url.trim())
            .map(|url| url.to_string())
            .map_err(|egress::Refused(reason)| Error::invalid("url", reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_come_from_the_catalog_deduplicated() {
        let types = vec!["project.created".to_owned(), "project.created".to_owned()];
        assert_eq!(checked_event_types(&types).unwrap(), ["project.created"]);
        assert!(checked_event_types(&[]).is_err());
        assert!(checked_event_types(&["user.logged_in".to_owned()]).is_err());
        assert!(checked_description(&"d".repeat(501)).is_err());
        assert!(checked_description("a\u{0}b").is_err());
    }

    #[test]
    fn the_audit_trail_keeps_urls_origin_only() {
        assert_eq!(
            redacted("https://hooks.example.com/catch/123/abc?token=secret"),
            "https://hooks.example.com"
        );
        assert_eq!(
            redacted("https://hooks.example.com:8443/in"),
            "https://hooks.example.com:8443"
        );
    }
}
