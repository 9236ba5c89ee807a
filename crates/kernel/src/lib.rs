//! Shared building blocks that every other crate stands on: typed ids, the injectable
//! clock, the stable error codes clients see, the database handle, keyset page requests
//! and [`TenantTx`], the transaction bound to exactly one organization.

pub mod clock;
pub mod data_map;
pub mod db;
pub mod error;
pub mod id;
pub mod limits;
pub mod page;
pub mod principal;
pub mod request;
pub mod tenant;

pub use clock::{Clock, FakeClock, SharedClock, SystemClock};
pub use db::{Backend, Db, TxMode, count_statements, db_error_code, in_background, numbered};
pub use error::{ClientError, Detail, Details, ErrorCode, LimitExceeded, TooMany};
pub use id::{
    ApiKeyId, DocumentId, GrantId, InvitationId, InvoiceId, MembershipId, OrgId, ProjectId,
    SessionId, UserId,
};
pub use limits::{ConfiguredLimits, FeatureFuture, Limit, LimitFuture, PlanLimits, SharedLimits};
pub use page::{ListOrder, Page, PageRequest};
pub use principal::Principal;
pub use request::RequestMeta;
pub use tenant::{RequestTurn, TenantOpener, TenantScoped, TenantTx, Turn};
