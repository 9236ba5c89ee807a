//! GraphQL object types, each a thin wrapper over a domain model.

pub mod access;
pub mod api_key;
pub mod audit;
pub mod billing;
pub mod document;
pub mod invitation;
pub mod membership;
pub mod node;
pub mod organization;
pub mod project;
pub mod role;
pub mod trusted_document;
pub mod user;
pub mod webhook;

pub use api_key::ApiKey;
pub use document::Document;
pub use invitation::Invitation;
pub use membership::Membership;
pub use node::Node;
pub use organization::Organization;
pub use project::Project;
pub use role::Role;
pub use trusted_document::TrustedDocument;
pub use user::User;

#[cfg(test)]
mod tests {
    use super::document::{DocumentVersion, Review};
    use super::webhook::{WebhookDelivery, WebhookEndpoint};
    use super::*;
    use async_graphql::{ContainerType, Context};

    /// The size of the future `resolve` returns for a record of type `T`.
    fn future_size<T: 'static, F: std::future::Future>(
        _resolve: impl FnOnce(&'static T, &'static Context<'static>) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// async-graphql moves each field's future into a box of its own, and that future is
    /// as large as its type's largest field: one field that enters an organization and
    /// checks a permission inline (4 KB) makes every title and name of a listed record as
    /// costly to resolve. Such fields box their work.
    #[test]
    fn every_field_of_a_listed_record_resolves_through_a_small_future() {
        macro_rules! sizes {
            ($($t:ty),*) => {
                vec![$((stringify!($t), future_size(|r: &$t, ctx| r.resolve_field(ctx)))),*]
            };
        }
        let sizes = sizes!(
            ApiKey,
            Document,
            DocumentVersion,
            Review,
            Invitation,
            Membership,
            Project,
            TrustedDocument,
            User,
            WebhookEndpoint,
            WebhookDelivery
        );
        for (name, size) in sizes {
            println!("{name} {size}");
            assert!(size <= 1024, "{name}: its field future takes {size} bytes");
        }
    }
}
