//! [`Worker`]: claims due jobs of the kinds it has handlers for and runs them, a few at a
//! time, renewing their leases while they run.

use crate::queue::{Job, JobState, Jobs};
use chrono::Duration;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// What a handler returns: done, or the failure's text (kept on the job; ids and codes
/// only, never personal data).
pub type HandlerFuture = BoxFuture<'static, Result<(), String>>;

/// Runs one job of a kind. It must be idempotent: a job whose worker died mid-attempt
/// runs again.
pub type Handler = Arc<dyn Fn(Job) -> HandlerFuture + Send + Sync>;

/// How a worker runs.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Jobs run at once by this worker (each may use a database connection).
    pub concurrency: usize,
    /// How long a claim holds without a heartbeat; renewed every third of it.
    pub lease: Duration,
    /// How often the worker looks for due jobs when nobody wakes it.
    pub poll_every: std::time::Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::seconds(60),
            poll_every: std::time::Duration::from_secs(1),
        }
    }
}

/// A worker over the queue.
#[derive(Clone)]
pub struct Worker {
    jobs: Jobs,
    handlers: BTreeMap<&'static str, Handler>,
    settings: WorkerSettings,
    running: Arc<Semaphore>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker with no handlers yet.
    pub fn new(jobs: Jobs, settings: WorkerSettings) -> Self {
        Self {
            jobs,
            handlers: BTreeMap::new(),
            running: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
        }
    }

    /// Runs jobs of `kind` with `handler`.
    pub fn handle<F>(mut self, kind: &'static str, handler: F) -> Self
    where
        F: Fn(Job) -> HandlerFuture + Send + Sync + 'static,
    {
        self.handlers.insert(kind, Arc::new(handler));
        self
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    /// Claims and runs due jobs until its task is aborted (as background work: see
    /// `kernel::in_background`).
    pub async fn run(self) {
        kernel::in_background(self.run_loop()).await;
    }

    async fn run_loop(self) {
        loop {
            let claimed = self.claim_and_start().await;
            if claimed == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.settings.poll_every) => {}
                    () = self.jobs.woken() => {}
                }
            } else if self.running.available_permits() == 0 {
                // Full: wait for a slot before claiming more.
                drop(self.running.acquire().await);
            }
        }
    }

    /// Claims as many due jobs as there are free slots and starts them; how many.
    async fn claim_and_start(&self) -> usize {
        let free = u32::try_from(self.running.available_permits()).unwrap_or(u32::MAX);
        let claimed = match self
            .jobs
            .claim(&self.kinds(), free, self.settings.lease)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "claiming jobs failed");
                return 0;
            }
        };
        let count = claimed.len();
        for job in claimed {
            let Ok(slot) = self.running.clone().acquire_owned().await else {
                return count; // never closed
            };
            let worker = self.clone();
            tokio::spawn(kernel::in_background(async move {
                worker.run_one(job).await;
                drop(slot);
            }));
        }
        count
    }

    /// Runs every due job, one after the other, until none is left (the command line and
    /// tests); how many ran.
    pub async fn run_until_idle(&self) -> usize {
        let mut ran = 0;
        loop {
            let claimed = match self.jobs.claim(&self.kinds(), 1, self.settings.lease).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming jobs failed");
                    return ran;
                }
            };
            let Some(job) = claimed.into_iter().next() else {
                return ran;
            };
            self.run_one(job).await;
            ran += 1;
        }
    }

    /// One attempt of `job`, in a span naming it (the handler's own lines included).
    async fn run_one(&self, job: Job) {
        let span = tracing::info_span!("job", job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts);
        self.attempt(job).instrument(span).await;
    }

    /// Its handler in a task of its own (a panic is a failure), the lease renewed
    /// meanwhile, then done or failed.
    async fn attempt(&self, job: Job) {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            return; // only claimed kinds it handles
        };
        let heartbeat = {
            let (jobs, id, lease) = (self.jobs.clone(), job.id, self.settings.lease);
            let every = (lease / 3)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1));
            tokio::spawn(kernel::in_background(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match jobs.heartbeat(id, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job.id = %id, "lost the job's lease: another worker may run it");
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(job.id = %id, %error, "renewing a job's lease failed")
                        }
                    }
                }
            }))
        };
        let started = std::time::Instant::now();
        let handling = kernel::in_background(handler(job.clone())).in_current_span();
        let outcome = match tokio::spawn(handling).await {
            Ok(outcome) => outcome,
            Err(panicked) => Err(format!("the handler panicked: {panicked}")),
        };
        heartbeat.abort();
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => match self.jobs.complete(&job).await {
                Ok(true) => tracing::info!(took_ms, "job done"),
                Ok(false) => tracing::warn!(
                    took_ms,
                    "job done, but its lease had passed to another worker"
                ),
                Err(error) => {
                    tracing::warn!(%error, "recording a done job failed; it will run again")
                }
            },
            Err(failure) => match self.jobs.fail(&job, &failure).await {
                Ok(Some(JobState::Dead)) => {
                    tracing::error!(error = %failure, took_ms, "job dead after its last attempt")
                }
                Ok(Some(_)) => {
                    tracing::warn!(error = %failure, took_ms, "job failed; retried later")
                }
                Ok(None) => {
                    tracing::warn!(error = %failure, took_ms, "job failed, but its lease had passed to another worker")
                }
                Err(error) => tracing::warn!(%error, "recording a failed job failed"),
            },
        }
    }
}
