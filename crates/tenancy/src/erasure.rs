//! Erasure of a person's account (GDPR Art. 17): memberships, roles, grants and the keys
//! they made removed in every organization (each chain records it), pending invitations
//! they sent revoked and invitations naming their email scrubbed, sessions ended, audit
//! values crypto-shredded (throttling counters hold only keyed hashes), and the
//! `users` row pseudonymized (a placeholder keeps what they authored pointing somewhere:
//! it reads "Deleted user"). An erasure ledger, written first and without plaintext, lets
//! every erasure be re-applied after a backup restore.

use crate::crypto;
use crate::entity::{erasure_request, invitation, membership, session, user};
use crate::error::{Error, Result};
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use hmac::{Hmac, Mac};
use kernel::{Backend, OrgId, Principal, TxMode, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

/// The name an erased person's records show.
pub const ERASED_NAME: &str = "Deleted user";
/// The domain of an erased account's placeholder address (`.invalid` never resolves).
const ERASED_DOMAIN: &str = "erased.invalid";
/// What replaces an erased email in invitations.
const ERASED_EMAIL: &str = "[erased]";

/// The key of stored pseudonyms, derived from the token secret (so no new secret to
/// manage).
pub(crate) fn pseudonym_key(token_secret: &SecretString) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(token_secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"pseudonyms");
    mac.finalize().into_bytes().into()
}

impl TenancyService {
    /// A keyed hash of `text` (hex): stored where the text itself would be personal data
    /// (an email, an address) but only equality matters.
    pub(crate) fn pseudonym(&self, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.pseudonym_key.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(text.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The personal-data subject of an email address in the audit trail: a pseudonym, since
    /// events name the subject whose key sealed a value in plaintext.
    pub(crate) fn email_subject(&self, email_normalized: &str) -> String {
        format!(
            "email:{}",
            self.pseudonym(&format!("email:{email_normalized}"))
        )
    }

    /// The subjects whose keys erasing a person deletes: their id, their email's
    /// pseudonym, and the email itself as subjects were named before pseudonyms.
    pub(crate) fn erasure_subjects(&self, user: UserId, email_normalized: &str) -> [String; 3] {
        [
            format!("user:{user}"),
            self.email_subject(email_normalized),
            format!("email:{email_normalized}"),
        ]
    }

    /// Deletes the caller's account after checking their password. Refused with
    /// `LAST_OWNER` while they are the last owner of an organization, before anything
    /// changes.
    #[tracing::instrument(name = "tenancy.delete_account", skip_all, err(level = "debug"))]
    pub async fn delete_account(
        &self,
        user: UserId,
        password: String,
        client: &crate::service::ClientInfo,
    ) -> Result<()> {
        let row = user::Entity::find_by_id(user.as_uuid())
            .one(self.db.conn())
            .await?
            .filter(|row| !is_erased(row))
            .ok_or(Error::NotFound { entity: "user" })?;
        // The password check is throttled like a log-in (the same counters): a stolen
        // access token is no unlimited password oracle.
        let (scopes, limits) = self.password_throttle(&row.email_normalized, client);
        let now = self.clock.now();
        crate::throttle::admit(self.db.conn(), &scopes, &limits, now).await?;
        if !crypto::verify_password(password, Some(row.password_hash.clone())).await? {
            crate::throttle::count(self.db.conn(), &scopes.account, now, limits.window).await?;
            return Err(Error::InvalidCredentials);
        }
        crate::throttle::succeeded(self.db.conn(), &scopes).await?;
        let by = Principal::User(user);
        self.begin_erasure(user, &row.email_normalized, &by.subject(), Some(by))
            .await
    }

    /// Refuses the last owner, writes the ledger entry, then erases.
    async fn begin_erasure(
        &self,
        user: UserId,
        email_normalized: &str,
        requested_by: &str,
        by: Option<Principal>,
    ) -> Result<()> {
        for m in self.memberships_of(user).await? {
            if m.role == Role::Owner.as_str() {
                let org = OrgId::from_uuid(m.organization_id);
                let tx = self.open(org, TxMode::Read).await?;
                // A count without a lock: the removal itself checks again, locked.
                let owners = tx
                    .select::<membership::Entity>()
                    .filter(membership::Column::Role.eq(Role::Owner.as_str()))
                    .count(tx.conn())
                    .await?;
                tx.rollback().await?;
                if owners <= 1 {
                    return Err(Error::LastOwner);
                }
            }
        }
        let ledger = Uuid::now_v7();
        erasure_request::Entity::insert(erasure_request::ActiveModel {
            id: Set(ledger),
            user_id: Set(user.as_uuid()),
            email_hash: Set(self.pseudonym(&format!("email:{email_normalized}"))),
            requested_at: Set(self.clock.now()),
            requested_by: Set(requested_by.to_owned()),
            steps: Set(String::new()),
            completed_at: Set(None),
        })
        .exec_without_returning(self.db.conn())
        .await?;
        self.erase_account(ledger, user, email_normalized, by).await
    }

    /// Erases the account with `email` for a request received another way (by mail, say):
    /// an operator's action, without the password, recorded with `requested_by`. The
    /// same refusal for the last owner of an organization.
    pub async fn erase_account_on_request(
        &self,
        email: &str,
        requested_by: &str,
    ) -> Result<UserId> {
        let normalized = crate::repo::normalize_email(email);
        let row = user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(&normalized))
            .one(self.db.conn())
            .await?
            .filter(|row| !is_erased(row))
            .ok_or(Error::NotFound { entity: "user" })?;
        let user = UserId::from_uuid(row.id);
        self.begin_erasure(user, &row.email_normalized, requested_by, None)
            .await?;
        Ok(user)
    }

    /// The erasure ledger as NDJSON, one entry per line (pseudonymous: ids and keyed
    /// hashes, no plaintext): kept outside the database, with or beside its backups, so
    /// a restore of a backup taken before an erasure can have it re-applied
    /// ([`Self::import_erasure_ledger`], then [`Self::replay_erasures`]).
    pub async fn erasure_ledger_ndjson(&self) -> Result<String> {
        let mut out = String::new();
        for entry in erasure_request::Entity::find().all(self.db.conn()).await? {
            let line = serde_json::json!({
                "id": entry.id,
                "user_id": entry.user_id,
                "email_hash": entry.email_hash,
                "requested_at": entry.requested_at,
                "requested_by": entry.requested_by,
                "completed_at": entry.completed_at,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    }

    /// Adds the entries of an exported ledger the database does not have (a restored
    /// backup predating them); returns how many. They are re-applied by the next
    /// [`Self::replay_erasures`].
    pub async fn import_erasure_ledger(&self, ndjson: &str) -> Result<usize> {
        #[derive(serde::Deserialize)]
        struct Entry {
            id: Uuid,
            user_id: Uuid,
            email_hash: String,
            requested_at: chrono::DateTime<chrono::Utc>,
            requested_by: String,
        }
        let mut added = 0;
        for (n, line) in ndjson.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = serde_json::from_str(line)
                .map_err(|e| Error::invalid("ledger", format!("line {}: {e}", n + 1)))?;
            let inserted = erasure_request::Entity::insert(erasure_request::ActiveModel {
                id: Set(entry.id),
                user_id: Set(entry.user_id),
                email_hash: Set(entry.email_hash),
                requested_at: Set(entry.requested_at),
                requested_by: Set(entry.requested_by),
                steps: Set(String::new()),
                // Not done in this database: the replay does it.
                completed_at: Set(None),
            })
            .on_conflict_do_nothing()
            .exec_without_returning(self.db.conn())
            .await?;
            // Rows written: 0 when the entry was there already.
            if let sea_orm::TryInsertResult::Inserted(rows) = inserted {
                added += usize::try_from(rows).unwrap_or(0);
            }
        }
        Ok(added)
    }

    /// Re-applies every erasure in the ledger (after a backup restore, or to finish one
    /// that stopped midway); an erasure already complete changes nothing. One that fails
    /// (the person became the last owner of an organization since, say) is logged and
    /// the rest go on; it is tried again on the next replay. Returns how many accounts
    /// were erased again.
    pub async fn replay_erasures(&self) -> Result<usize> {
        let mut replayed = 0;
        for entry in erasure_request::Entity::find().all(self.db.conn()).await? {
            let user = UserId::from_uuid(entry.user_id);
            let Some(row) = user::Entity::find_by_id(entry.user_id)
                .one(self.db.conn())
                .await?
            else {
                continue;
            };
            if is_erased(&row) && entry.completed_at.is_some() {
                continue;
            }
            match self
                .erase_account(entry.id, user, &row.email_normalized, None)
                .await
            {
                Ok(()) => replayed += 1,
                Err(error) => {
                    tracing::error!(ledger = %entry.id, %error, "re-applying an erasure failed");
                }
            }
        }
        Ok(replayed)
    }

    /// Erases the account; `by` is the person who asked (an operator's or a replay's
    /// erasure is the system's).
    async fn erase_account(
        &self,
        ledger: Uuid,
        user: UserId,
        email_normalized: &str,
        by: Option<Principal>,
    ) -> Result<()> {
        // Each organization in its own transaction: its chain records the removal.
        for m in self.memberships_of(user).await? {
            let tx = self
                .open(OrgId::from_uuid(m.organization_id), TxMode::Write)
                .await?;
            let role = Role::parse(&m.role)?;
            self.delete_membership(&tx, m, role, "member.erased")
                .await?;
            let now = self.clock.now();
            invitation::Entity::update_many()
                .col_expr(invitation::Column::RevokedAt, Expr::value(now))
                .filter(invitation::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                .filter(invitation::Column::InvitedBy.eq(user.as_uuid()))
                .filter(invitation::Column::AcceptedAt.is_null())
                .filter(invitation::Column::RevokedAt.is_null())
                .exec(tx.conn())
                .await?;
            invitation::Entity::update_many()
                .col_expr(invitation::Column::Email, Expr::value(ERASED_EMAIL))
                .col_expr(
                    invitation::Column::EmailNormalized,
                    Expr::value(format!("erased:{ledger}")),
                )
                .filter(invitation::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                .filter(invitation::Column::EmailNormalized.eq(email_normalized))
                .exec(tx.conn())
                .await?;
            tx.commit().await?;
        }
        self.record_step(ledger, "organizations").await?;

        // The platform's part, in one transaction.
        let now = self.clock.now();
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now))
            .filter(session::Column::UserId.eq(user.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(tx.conn())
            .await?;
        self.bind_erasing(tx.conn(), user, email_normalized).await?;
        // Exports they asked for hold their data: gone too (the retention run deletes
        // archives without a row).
        crate::entity::data_export::Entity::delete_many()
            .filter(crate::entity::data_export::Column::RequestedBy.eq(user.as_uuid()))
            .exec(tx.conn())
            .await?;
        let subjects = self.erasure_subjects(user, email_normalized);
        let keys = self.audit.erase_person(tx.conn(), &subjects).await?;
        if self.db.backend() == Backend::Postgres {
            // The application role may not write these columns: a narrow function writes
            // the same placeholders (migration m0025).
            tx.conn()
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pseudonymize_user($1)",
                    [user.as_uuid().into()],
                ))
                .await?;
        } else {
            let placeholder = format!("deleted-{}@{ERASED_DOMAIN}", user.as_uuid().simple());
            user::Entity::update_many()
                .col_expr(user::Column::Email, Expr::value(placeholder.clone()))
                .col_expr(user::Column::EmailNormalized, Expr::value(placeholder))
                .col_expr(user::Column::Name, Expr::value(ERASED_NAME))
                // No password verifies against an empty hash.
                .col_expr(user::Column::PasswordHash, Expr::value(""))
                .filter(user::Column::Id.eq(user.as_uuid()))
                .exec(tx.conn())
                .await?;
        }
        self.audit
            .record(
                &tx,
                match by {
                    Some(person) => NewEvent::new("user.erased", "user", Some(user)).by(person),
                    None => NewEvent::new("user.erased", "user", Some(user)),
                }
                .change("audit_keys_deleted", None::<u64>, Some(keys))
                .change("ledger", None::<String>, Some(ledger.to_string())),
            )
            .await?;
        erasure_request::Entity::update_many()
            .col_expr(
                erasure_request::Column::Steps,
                Expr::value("organizations,account"),
            )
            .col_expr(erasure_request::Column::CompletedAt, Expr::value(now))
            .filter(erasure_request::Column::Id.eq(ledger))
            .exec(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_step(&self, ledger: Uuid, step: &str) -> Result<()> {
        erasure_request::Entity::update_many()
            .col_expr(erasure_request::Column::Steps, Expr::value(step))
            .filter(erasure_request::Column::Id.eq(ledger))
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    /// On PostgreSQL, lets this transaction delete `user`'s personal-data keys (and only
    /// theirs: a row policy), including their email's pseudonymous subject.
    pub(crate) async fn bind_erasing(
        &self,
        conn: &impl ConnectionTrait,
        user: UserId,
        email_normalized: &str,
    ) -> Result<()> {
        if self.db.backend() == Backend::Postgres {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('app.erasing_user', $1, true),
                        set_config('app.erasing_email_subject', $2, true)",
                [
                    user.to_string().into(),
                    self.email_subject(email_normalized).into(),
                ],
            ))
            .await?;
        }
        Ok(())
    }

    /// Every membership of `user`, in every organization.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<membership::Model>> {
        let txn = self.read_as_user(user).await?;
        let rows = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user.as_uuid()))
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows)
    }
}

fn is_erased(row: &user::Model) -> bool {
    row.email_normalized.ends_with(ERASED_DOMAIN) && row.name == ERASED_NAME
}
