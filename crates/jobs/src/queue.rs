//! [`Jobs`]: enqueue, claim, renew, finish, and the operator's view of the queue.

use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use kernel::{Backend, Db, SharedClock};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use serde_json::Value as Json;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// Longest error text kept on a job (the rest is cut).
const ERROR_CHARS: usize = 2_000;
/// First retry delay; each further attempt doubles it.
const RETRY_BASE: Duration = Duration::seconds(5);
/// Retries wait at most this long.
const RETRY_CAP: Duration = Duration::hours(1);
/// Rows an operator's listing returns at most.
pub const LIST_LIMIT: u64 = 500;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    /// Waiting for its `run_at`.
    Pending,
    /// Claimed by a worker whose lease has not run out.
    Running,
    /// Done.
    Done,
    /// Failed `max_attempts` times; waits for an operator.
    Dead,
    /// Cancelled by an operator.
    Cancelled,
}

impl JobState {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Running,
        Self::Done,
        Self::Dead,
        Self::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What runs it (a handler's name, e.g. `billing.organization`).
    pub kind: &'static str,
    /// Its input: ids, never personal data.
    pub payload: Json,
    /// Enqueueing the same `(kind, unique_key)` again keeps the first job.
    pub unique_key: Option<String>,
    /// Not before (default: now).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before it is dead.
    pub max_attempts: u32,
}

impl NewJob {
    /// A job of `kind` with `payload`, to run now, tried up to 8 times.
    pub fn new(kind: &'static str, payload: Json) -> Self {
        Self {
            kind,
            payload,
            unique_key: None,
            run_at: None,
            max_attempts: 8,
        }
    }

    /// Deduplicated by `key` within its kind.
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: Uuid,
    /// Its kind.
    pub kind: String,
    /// Its input.
    pub payload: Json,
    /// Its deduplication key.
    pub unique_key: Option<String>,
    /// Where it is.
    pub state: JobState,
    /// Attempts started (a claim is an attempt).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not before.
    pub run_at: DateTime<Utc>,
    /// The worker holding it while it runs; afterwards the last worker that ran it.
    pub locked_by: Option<String>,
    /// Until when that worker's lease holds.
    pub locked_until: Option<DateTime<Utc>>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When enqueued.
    pub created_at: DateTime<Utc>,
}

/// Jobs of one kind in one state (for metrics and `platform jobs list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    /// The kind.
    pub kind: String,
    /// The state.
    pub state: JobState,
    /// How many.
    pub count: u64,
    /// The earliest `run_at` among them (how long the oldest has waited).
    pub oldest: Option<DateTime<Utc>>,
}

/// How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based)
/// failed: 5 s doubled per attempt, at most an hour, times a jitter factor in
/// `[0.5, 1.0]` drawn by the caller (`jitter` in `[0, 1]`), so jobs that failed together
/// do not all come back together.
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let full = RETRY_BASE
        .checked_mul(1 << doublings)
        .unwrap_or(RETRY_CAP)
        .min(RETRY_CAP);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    // Milliseconds fit f64 exactly at these sizes.
    #[allow(clippy::cast_possible_truncation)]
    let millis = (full.num_milliseconds() as f64 * factor).round() as i64;
    Duration::milliseconds(millis)
}

/// The queue.
#[derive(Debug, Clone)]
pub struct Jobs {
    db: Db,
    clock: SharedClock,
    /// This process's name in `locked_by`.
    worker_id: Arc<str>,
    wake: Arc<Notify>,
}

/// The columns every read returns, in [`job_from_row`]'s order.
const COLUMNS: &str = "id, kind, payload, unique_key, state, attempts, max_attempts, run_at, \
                       locked_by, locked_until, last_error, created_at";

impl Jobs {
    /// The queue in `db`, timed by `clock`, as a worker named afresh.
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self {
            db,
            clock,
            worker_id: Uuid::now_v7().to_string().into(),
            wake: Arc::default(),
        }
    }

    /// This process's worker name (in `locked_by`).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Tells this process's worker to look now (after a commit that enqueued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    fn statement(&self, sql: &str, values: Vec<Value>) -> Statement {
        statement(self.db.backend(), sql, values)
    }

    /// Adds `job` through `conn`: the caller's transaction, so the job exists exactly
    /// when the change that causes it commits. False when a job of the same kind and
    /// unique key already exists (that one stays).
    pub async fn enqueue(&self, conn: &impl ConnectionTrait, job: NewJob) -> Result<bool> {
        let now = self.clock.now();
        let stmt = self.statement(
            "INSERT INTO jobs (id, kind, payload, unique_key, state, attempts, max_attempts, \
             run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $7) \
             ON CONFLICT DO NOTHING",
            vec![
                Uuid::now_v7().into(),
                job.kind.into(),
                job.payload.to_string().into(),
                job.unique_key.into(),
                i32::try_from(job.max_attempts.max(1))
                    .unwrap_or(i32::MAX)
                    .into(),
                job.run_at.unwrap_or(now).into(),
                now.into(),
            ],
        );
        Ok(conn.execute_raw(stmt).await?.rows_affected() == 1)
    }

    /// Claims up to `limit` jobs of `kinds` that are due (pending and past `run_at`, or
    /// running with a lease that ran out) for this worker until now + `lease`; each claim
    /// counts as an attempt. A job whose lease ran out on its last attempt is dead
    /// instead. On PostgreSQL rows another worker is claiming are skipped, not waited for.
    pub async fn claim(&self, kinds: &[&str], limit: u32, lease: Duration) -> Result<Vec<Job>> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let conn = self.db.conn();
        // A job whose worker died during its last attempt is dead, not claimed again.
        let mut values: Vec<Value> = vec![now.into()];
        values.extend(kinds.iter().map(|k| Value::from(*k)));
        conn.execute_raw(self.statement(
            &format!(
                "UPDATE jobs SET state = 'dead', locked_until = NULL, \
                 last_error = 'its worker stopped during the last attempt', updated_at = $1 \
                 WHERE state = 'running' AND locked_until < $1 AND attempts >= max_attempts \
                 AND kind IN ({})",
                placeholders(2, kinds.len())
            ),
            values,
        ))
        .await?;
        let kinds_in = placeholders(5, kinds.len());
        let lock = match self.db.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut values: Vec<Value> = vec![
            self.worker_id.to_string().into(),
            (now + lease).into(),
            now.into(),
            i64::from(limit).into(),
        ];
        values.extend(kinds.iter().map(|k| Value::from(*k)));
        let rows = conn
            .query_all_raw(self.statement(
                &format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1, \
                     locked_until = $2, updated_at = $3 \
                     WHERE id IN (SELECT id FROM jobs \
                       WHERE kind IN ({kinds_in}) AND attempts < max_attempts \
                       AND ((state = 'pending' AND run_at <= $3) \
                         OR (state = 'running' AND locked_until < $3)) \
                       ORDER BY run_at LIMIT $4 {lock}) \
                     RETURNING {COLUMNS}"
                ),
                values,
            ))
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Renews this worker's lease on `job` until now + `lease`; false when the lease is
    /// no longer this worker's (it ran out and another worker claimed the job).
    pub async fn heartbeat(&self, job: Uuid, lease: Duration) -> Result<bool> {
        let now = self.clock.now();
        let done = self
            .db
            .conn()
            .execute_raw(self.statement(
                "UPDATE jobs SET locked_until = $1, updated_at = $2 \
                 WHERE id = $3 AND locked_by = $4 AND state = 'running'",
                vec![
                    (now + lease).into(),
                    now.into(),
                    job.into(),
                    self.worker_id.to_string().into(),
                ],
            ))
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks `job` done; false when this worker no longer held it.
    pub async fn complete(&self, job: &Job) -> Result<bool> {
        self.finish(job, JobState::Done, job.run_at, None).await
    }

    /// Records that this attempt of `job` failed with `error`: pending again after
    /// [`retry_delay`], or dead after its last attempt. The state it is left in; `None`
    /// when this worker no longer held it (nothing changed).
    pub async fn fail(&self, job: &Job, error: &str) -> Result<Option<JobState>> {
        let error: String = error.chars().take(ERROR_CHARS).collect();
        let (state, run_at) = if job.attempts >= job.max_attempts {
            (JobState::Dead, job.run_at)
        } else {
            let delay = retry_delay(job.attempts, rand::random::<f64>());
            (JobState::Pending, self.clock.now() + delay)
        };
        let held = self.finish(job, state, run_at, Some(error)).await?;
        Ok(held.then_some(state))
    }

    async fn finish(
        &self,
        job: &Job,
        state: JobState,
        run_at: DateTime<Utc>,
        error: Option<String>,
    ) -> Result<bool> {
        let done = self
            .db
            .conn()
            .execute_raw(self.statement(
                "UPDATE jobs SET state = $1, run_at = $2, last_error = COALESCE($3, last_error), \
                 locked_until = NULL, updated_at = $4 \
                 WHERE id = $5 AND locked_by = $6 AND state = 'running'",
                vec![
                    state.as_str().into(),
                    run_at.into(),
                    error.into(),
                    self.clock.now().into(),
                    job.id.into(),
                    self.worker_id.to_string().into(),
                ],
            ))
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The job `id`.
    pub async fn get(&self, id: Uuid) -> Result<Job> {
        let row = self
            .db
            .conn()
            .query_one_raw(self.statement(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"),
                vec![id.into()],
            ))
            .await?
            .ok_or(Error::NotFound(id))?;
        job_from_row(&row)
    }

    /// The newest jobs (at most [`LIST_LIMIT`]), of one state and kind if given.
    pub async fn list(&self, state: Option<JobState>, kind: Option<&str>) -> Result<Vec<Job>> {
        let rows = self
            .db
            .conn()
            .query_all_raw(self.statement(
                &format!(
                    "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) \
                     AND ($2 IS NULL OR kind = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
                ),
                vec![
                    state.map(JobState::as_str).into(),
                    kind.map(str::to_owned).into(),
                    i64::try_from(LIST_LIMIT).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Puts a dead or cancelled job back in the queue, due now, with its attempts reset.
    pub async fn retry(&self, id: Uuid) -> Result<Job> {
        let assignments = "state = 'pending', attempts = 0, run_at = $1, updated_at = $1";
        self.move_job(
            id,
            "retry",
            [JobState::Dead, JobState::Cancelled],
            assignments,
        )
        .await
    }

    /// Cancels a pending or dead job (a running one finishes its attempt first).
    pub async fn cancel(&self, id: Uuid) -> Result<Job> {
        let assignments = "state = 'cancelled', updated_at = $1";
        self.move_job(
            id,
            "cancel",
            [JobState::Pending, JobState::Dead],
            assignments,
        )
        .await
    }

    /// Applies `assignments` (`$1` is now) to job `id` if it is in one of the states
    /// `from`; the job as it is afterwards.
    async fn move_job(
        &self,
        id: Uuid,
        action: &'static str,
        from: [JobState; 2],
        assignments: &str,
    ) -> Result<Job> {
        let done = self
            .db
            .conn()
            .execute_raw(self.statement(
                &format!(
                    "UPDATE jobs SET {assignments} WHERE id = $2 AND state IN ('{}', '{}')",
                    from[0], from[1]
                ),
                vec![self.clock.now().into(), id.into()],
            ))
            .await?;
        let job = self.get(id).await?;
        if done.rows_affected() == 0 {
            return Err(Error::WrongState {
                id,
                state: job.state.to_string(),
                action,
                allowed: format!("{} or {}", from[0], from[1]),
            });
        }
        Ok(job)
    }

    /// Jobs per kind and state that still matter (pending, running, dead), with the
    /// earliest `run_at` of each group.
    pub async fn counts(&self) -> Result<Vec<JobCount>> {
        let rows = self
            .db
            .conn()
            .query_all_raw(self.statement(
                "SELECT kind, state, count(*), min(run_at) FROM jobs \
                 WHERE state IN ('pending', 'running', 'dead') GROUP BY kind, state ORDER BY kind, state",
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get_by_index(1)?;
                Ok(JobCount {
                    kind: row.try_get_by_index(0)?,
                    state: JobState::parse(&state).ok_or_else(|| Error::Corrupt(state))?,
                    count: u64::try_from(row.try_get_by_index::<i64>(2)?).unwrap_or(0),
                    oldest: row.try_get_by_index(3)?,
                })
            })
            .collect()
    }

    /// Deletes done and cancelled jobs (of `kind` only, if given) last touched before
    /// `before`: the retention run for all kinds, and frequent kinds after their own
    /// shorter time; how many.
    pub async fn delete_finished_before(
        &self,
        before: DateTime<Utc>,
        kind: Option<&str>,
    ) -> Result<u64> {
        let done = self
            .db
            .conn()
            .execute_raw(self.statement(
                "DELETE FROM jobs WHERE state IN ('done', 'cancelled') AND updated_at < $1 \
                 AND ($2 IS NULL OR kind = $2)",
                vec![before.into(), kind.map(str::to_owned).into()],
            ))
            .await?;
        Ok(done.rows_affected())
    }
}

/// `$first, $first+1, …` (`count` of them).
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sql` with PostgreSQL's `$n` placeholders, for `backend` (SQLite numbers them `?n`).
fn statement(backend: Backend, sql: &str, values: Vec<Value>) -> Statement {
    let backend = match backend {
        Backend::Postgres => sea_orm::DbBackend::Postgres,
        Backend::Sqlite => sea_orm::DbBackend::Sqlite,
    };
    Statement::from_sql_and_values(backend, kernel::numbered(backend, sql), values)
}

fn job_from_row(row: &QueryResult) -> Result<Job> {
    let state: String = row.try_get_by_index(4)?;
    let payload: String = row.try_get_by_index(2)?;
    let count = |i: usize| -> Result<u32> {
        Ok(u32::try_from(row.try_get_by_index::<i32>(i)?).unwrap_or(0))
    };
    Ok(Job {
        id: row.try_get_by_index(0)?,
        kind: row.try_get_by_index(1)?,
        payload: serde_json::from_str(&payload).map_err(|e| Error::Corrupt(e.to_string()))?,
        unique_key: row.try_get_by_index(3)?,
        state: JobState::parse(&state).ok_or_else(|| Error::Corrupt(state.clone()))?,
        attempts: count(5)?,
        max_attempts: count(6)?,
        run_at: row.try_get_by_index(7)?,
        locked_by: row.try_get_by_index(8)?,
        locked_until: row.try_get_by_index(9)?,
        last_error: row.try_get_by_index(10)?,
        created_at: row.try_get_by_index(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_five_seconds_up_to_an_hour_with_jitter_down_to_half() {
        let secs = |attempt, jitter| retry_delay(attempt, jitter).num_milliseconds() as f64 / 1e3;
        assert_eq!(secs(1, 1.0), 5.0);
        assert_eq!(secs(2, 1.0), 10.0);
        assert_eq!(secs(3, 1.0), 20.0);
        assert_eq!(secs(1, 0.0), 2.5);
        assert_eq!(secs(10, 1.0), 2_560.0);
        assert_eq!(secs(11, 1.0), 3_600.0);
        assert_eq!(secs(u32::MAX, 1.0), 3_600.0);
        assert_eq!(secs(u32::MAX, 0.0), 1_800.0);
        // Out-of-range jitter is clamped, not trusted.
        assert_eq!(secs(1, 7.0), 5.0);
        assert_eq!(secs(1, -1.0), 2.5);
        assert_eq!(secs(0, 1.0), 5.0);
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("Running"), None);
    }

    #[test]
    fn sqlite_gets_numbered_question_marks() {
        let s = statement(Backend::Sqlite, "SELECT $1, $2", vec![1.into(), 2.into()]);
        assert_eq!(s.sql, "SELECT ?1, ?2");
    }
}
