//! Sign-up, log-in, token refresh and log-out.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::User;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub struct AuthMutation;

/// Input of `signUp`.
#[derive(InputObject)]
pub struct SignUpInput {
    /// Email address; unique, compared case-insensitively.
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// Display name.
    pub name: String,
}

/// Result of `signUp`.
#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// The new account; log in to get tokens.
    pub user: User,
}

/// Input of `logIn`.
#[derive(InputObject)]
pub struct LogInInput {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Tokens for a session.
#[derive(SimpleObject)]
pub struct LogInPayload {
    /// Send as `Authorization: Bearer <accessToken>`; valid for 15 minutes.
    pub access_token: String,
    /// Single-use; trade it with `refreshToken` for a new pair before it expires.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: User,
}

impl From<tenancy::Tokens> for LogInPayload {
    fn from(tokens: tenancy::Tokens) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            user: User::own(tokens.user),
        }
    }
}

/// Input of `refreshToken`.
#[derive(InputObject)]
pub struct RefreshTokenInput {
    /// The refresh token from `logIn` or the last `refreshToken`.
    pub refresh_token: String,
}

/// Result of `erasePersonalData`.
#[derive(SimpleObject)]
pub struct ErasePersonalDataPayload {
    /// How many encryption keys were destroyed.
    pub keys_deleted: i32,
}

/// Result of `logOut`.
#[derive(SimpleObject)]
pub struct LogOutPayload {
    /// Whether the session was ended.
    pub ok: bool,
}

/// Input of `deleteAccount`.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The caller's password, again.
    pub password: String,
}

/// What `deleteAccount` did.
#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    /// The erased account's id (what the person authored now reads "Deleted user").
    pub deleted_user_id: ID,
}

#[Object]
impl AuthMutation {
    /// Creates an account.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> GqlResult<SignUpPayload> {
        let user = ctx
            .state()
            .tenancy
            .sign_up(
                tenancy::NewUser {
                    email: input.email,
                    password: input.password,
                    name: input.name,
                },
                &ctx.request().client,
            )
            .await
            .gql()?;
        Ok(SignUpPayload {
            user: User::own(user),
        })
    }

    /// Logs in with email and password. After too many failures for the account or the
    /// address, `RATE_LIMITED` with `extensions.retryAfterSeconds`.
    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> GqlResult<LogInPayload> {
        let tokens = ctx
            .state()
            .tenancy
            .log_in(&input.email, input.password, &ctx.request().client)
            .await
            .gql()?;
        Ok(tokens.into())
    }

    /// Trades a refresh token for a new pair; the old refresh token stops working, and
    /// presenting it again ends the whole session.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        input: RefreshTokenInput,
    ) -> GqlResult<LogInPayload> {
        let tokens = ctx
            .state()
            .tenancy
            .refresh(&input.refresh_token)
            .await
            .gql()?;
        Ok(tokens.into())
    }

    /// Erases the caller's personal data from every audit trail (GDPR): the keys that
    /// encrypt it are destroyed, so it reads `[erased]`; the chains still verify.
    async fn erase_personal_data(&self, ctx: &Context<'_>) -> GqlResult<ErasePersonalDataPayload> {
        let user = ctx.user().await?;
        let deleted = ctx.state().tenancy.erase_personal_data(user).await.gql()?;
        Ok(ErasePersonalDataPayload {
            keys_deleted: i32::try_from(deleted).unwrap_or(i32::MAX),
        })
    }

    /// Deletes the caller's account (GDPR Art. 17) after checking the password: removed
    /// from every organization (with the keys they made), pending invitations they sent
    /// revoked, sessions ended, audit values crypto-shredded, and the account
    /// pseudonymized. The last owner of an organization gets `CONFLICT` with `reason =
    /// "LAST_OWNER"` until they hand ownership on.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> GqlResult<DeleteAccountPayload> {
        let user = ctx.user().await?;
        ctx.state()
            .tenancy
            .delete_account(user, input.password, &ctx.request().client)
            .await
            .gql()?;
        Ok(DeleteAccountPayload {
            deleted_user_id: GlobalId::global(NodeKind::User, user.as_uuid()),
        })
    }

    /// Ends the caller's session: its access and refresh tokens stop working.
    async fn log_out(&self, ctx: &Context<'_>) -> GqlResult<LogOutPayload> {
        ctx.principal().await?;
        let Some(session) = ctx.request().caller().gql()?.session() else {
            return Err(ApiError::WrongPrincipal(
                "API keys have no session; revoke the key instead",
            )
            .into());
        };
        ctx.state().tenancy.log_out(session).await.gql()?;
        Ok(LogOutPayload { ok: true })
    }
}
