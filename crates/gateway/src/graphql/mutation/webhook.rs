//! Managing the active organization's webhook endpoints (owners and admins).

use crate::context::{Where, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::webhook::{WebhookDelivery, WebhookEndpoint};
use crate::standing::WriteClass;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};

#[derive(Default)]
pub struct WebhookMutation;

/// Input of `createWebhookEndpoint`.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https://…` (at most 2,048 characters, a public address).
    pub url: String,
    /// Names from `webhookEventTypes` (at least one).
    pub event_types: Vec<String>,
    /// What it is for (at most 500 characters).
    #[graphql(default)]
    pub description: String,
}

/// A new endpoint with its signing secret, shown only here.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The endpoint.
    pub webhook_endpoint: WebhookEndpoint,
    /// `whsec_…`: verify the `webhook-signature` header with it.
    pub secret: String,
}

/// Input of `updateWebhookEndpoint`: what changes (left out: unchanged).
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint.
    pub webhook_endpoint_id: ID,
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// A new description.
    pub description: Option<String>,
    /// Disable it, or enable it again (which clears its failure streak).
    pub enabled: Option<bool>,
}

/// The changed endpoint.
#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    /// The endpoint.
    pub webhook_endpoint: WebhookEndpoint,
}

/// Input naming an endpoint.
#[derive(InputObject)]
pub struct WebhookEndpointInput {
    /// The endpoint.
    pub webhook_endpoint_id: ID,
}

/// Input of `redeliverWebhook`.
#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// A delivery from `webhookDeliveries`.
    pub delivery_id: ID,
}

/// The new delivery.
#[derive(SimpleObject)]
pub struct RedeliverWebhookPayload {
    /// It, pending.
    pub delivery: WebhookDelivery,
}

fn endpoint_id(id: &ID) -> GqlResult<GlobalId> {
    GlobalId::expect("webhookEndpointId", id, NodeKind::WebhookEndpoint).gql()
}

#[Object]
impl WebhookMutation {
    /// Adds an endpoint that receives the organization's events of `eventTypes`, signed
    /// with a new secret.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> GqlResult<CreateWebhookEndpointPayload> {
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let on = Resource::of_type(ResourceType::Webhook);
            let permit = unit.permit(on, Action::Create).await?;
            let (endpoint, secret) = unit
                .state
                .webhooks
                .create_endpoint(
                    unit.tx,
                    &permit,
                    webhooks::NewEndpoint {
                        url: &input.url,
                        event_types: &input.event_types,
                        description: &input.description,
                    },
                )
                .await?;
            Ok(CreateWebhookEndpointPayload {
                webhook_endpoint: WebhookEndpoint {
                    org: unit.tx.org_id(),
                    endpoint,
                },
                secret,
            })
        })
        .await
    }

    /// Changes an endpoint's URL, event types or description, or disables or enables it.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> GqlResult<WebhookEndpointPayload> {
        let id = endpoint_id(&input.webhook_endpoint_id)?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let on = Resource::record(ResourceType::Webhook, id.id);
                let permit = unit.permit(on, Action::Update).await?;
                let endpoint = unit
                    .state
                    .webhooks
                    .update_endpoint(
                        unit.tx,
                        &permit,
                        id.id,
                        webhooks::EndpointChange {
                            url: input.url,
                            event_types: input.event_types,
                            description: input.description,
                            enabled: input.enabled,
                        },
                    )
                    .await?;
                Ok(WebhookEndpointPayload {
                    webhook_endpoint: WebhookEndpoint {
                        org: unit.tx.org_id(),
                        endpoint,
                    },
                })
            },
        )
        .await
    }

    /// Deletes an endpoint and its delivery log.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointInput,
    ) -> GqlResult<WebhookEndpointPayload> {
        let id = endpoint_id(&input.webhook_endpoint_id)?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Settling,
            async |unit| {
                let on = Resource::record(ResourceType::Webhook, id.id);
                let permit = unit.permit(on, Action::Delete).await?;
                let endpoint = unit
                    .state
                    .webhooks
                    .delete_endpoint(unit.tx, &permit, id.id)
                    .await?;
                Ok(WebhookEndpointPayload {
                    webhook_endpoint: WebhookEndpoint {
                        org: unit.tx.org_id(),
                        endpoint,
                    },
                })
            },
        )
        .await
    }

    /// Gives an endpoint a new signing secret. For 24 hours deliveries are signed with
    /// the old one too (two signatures in `webhook-signature`), then with the new only.
    async fn rotate_webhook_endpoint_secret(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointInput,
    ) -> GqlResult<CreateWebhookEndpointPayload> {
        let id = endpoint_id(&input.webhook_endpoint_id)?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let on = Resource::record(ResourceType::Webhook, id.id);
                let permit = unit.permit(on, Action::Update).await?;
                let (endpoint, secret) = unit
                    .state
                    .webhooks
                    .rotate_secret(unit.tx, &permit, id.id)
                    .await?;
                Ok(CreateWebhookEndpointPayload {
                    webhook_endpoint: WebhookEndpoint {
                        org: unit.tx.org_id(),
                        endpoint,
                    },
                    secret,
                })
            },
        )
        .await
    }

    /// Sends a delivery's message to its endpoint again (same `webhook-id`).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> GqlResult<RedeliverWebhookPayload> {
        let id =
            GlobalId::expect("deliveryId", &input.delivery_id, NodeKind::WebhookDelivery).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let on = Resource::of_type(ResourceType::Webhook);
                let permit = unit.permit(on, Action::Update).await?;
                let delivery = unit
                    .state
                    .webhooks
                    .redeliver(unit.tx, &permit, id.id)
                    .await?;
                Ok(RedeliverWebhookPayload {
                    delivery: WebhookDelivery {
                        org: unit.tx.org_id(),
                        delivery,
                    },
                })
            },
        )
        .await
    }
}
