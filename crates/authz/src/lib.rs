//! Authorization: who may do what with which record in which organization.
//!
//! A Casbin model with organizations as domains, built-in role templates shared by every
//! organization ([`builtin`]), custom roles and deny rules per organization, role
//! assignments, and grants on single records that children inherit. Each organization's
//! policy is loaded into its own cached enforcer. Decisions come out as [`Permit`]s, which
//! only this crate can make and which domain services require.

pub mod builtin;
mod engine;
mod entity;
pub mod error;
pub mod model;
mod permit;
mod service;

pub use error::{Error, Result};
pub use model::{
    Action, Effect, Explanation, Grant, Permission, Resource, ResourceType, RoleInfo, Rule, Subject,
};
pub use permit::Permit;
pub use service::Authorizer;
