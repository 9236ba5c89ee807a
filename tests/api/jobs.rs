//! The durable job queue on the real database (both engines): a job exists exactly when
//! its transaction committed, a key is enqueued once, two workers never hold the same
//! job, failures back off and end dead with their last error, an operator retries and
//! cancels, and a job whose worker died runs again after its lease, once.

use crate::helpers::TestApp;
use chrono::Duration;
use jobs::{JobState, Jobs, NewJob, Worker, WorkerSettings};
use kernel::ClientError as _;
use kernel::Clock as _;
use sea_orm::TransactionTrait;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const KIND: &str = "test.job";

/// A second worker on the same database and clock (another instance).
fn another_worker(app: &TestApp) -> Jobs {
    Jobs::new(app.state.db.clone(), app.state.clock.clone())
}

fn settings() -> WorkerSettings {
    WorkerSettings {
        concurrency: 2,
        lease: Duration::seconds(30),
        poll_every: std::time::Duration::from_millis(50),
    }
}

#[tokio::test]
async fn a_job_exists_only_if_its_transaction_committed_and_a_key_is_enqueued_once() {
    let app = TestApp::spawn().await;
    let queue = &app.state.jobs;
    let db = app.state.db.conn();

    let tx = db.begin().await.unwrap();
    assert!(
        queue
            .enqueue(&tx, NewJob::new(KIND, json!({"n": 1})).unique("k"))
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    assert!(queue.list(None, Some(KIND)).await.unwrap().is_empty());

    let tx = db.begin().await.unwrap();
    assert!(
        queue
            .enqueue(&tx, NewJob::new(KIND, json!({"n": 2})).unique("k"))
            .await
            .unwrap()
    );
    assert!(
        !queue
            .enqueue(&tx, NewJob::new(KIND, json!({"n": 3})).unique("k"))
            .await
            .unwrap(),
        "the same key is kept once"
    );
    tx.commit().await.unwrap();
    // Another instance enqueueing the same key later changes nothing either.
    assert!(
        !another_worker(&app)
            .enqueue(db, NewJob::new(KIND, json!({"n": 4})).unique("k"))
            .await
            .unwrap()
    );
    // Jobs without a key are never duplicates.
    for _ in 0..2 {
        assert!(
            queue
                .enqueue(db, NewJob::new(KIND, json!({"n": 5})))
                .await
                .unwrap()
        );
    }
    let listed = queue.list(None, Some(KIND)).await.unwrap();
    assert_eq!(listed.len(), 3);
    let keyed: Vec<_> = listed
        .iter()
        .filter(|j| j.unique_key.as_deref() == Some("k"))
        .collect();
    assert_eq!(keyed.len(), 1);
    assert_eq!(keyed[0].payload, json!({"n": 2}));
    assert_eq!(keyed[0].state, JobState::Pending);
    let counts = queue.counts().await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].state, counts[0].count), (JobState::Pending, 3));
}

#[tokio::test]
async fn two_workers_claiming_at_once_never_hold_the_same_job() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.state.jobs.clone(), another_worker(&app));
    for n in 0..60 {
        a.enqueue(app.state.db.conn(), NewJob::new(KIND, json!({ "n": n })))
            .await
            .unwrap();
    }
    let drain = |queue: Jobs| async move {
        let mut held = Vec::new();
        loop {
            let claimed = queue
                .claim(&[KIND], 4, Duration::seconds(30))
                .await
                .unwrap();
            if claimed.is_empty() {
                return held;
            }
            held.extend(claimed.into_iter().map(|j| j.id));
        }
    };
    let (by_a, by_b) = tokio::join!(drain(a.clone()), drain(b.clone()));
    let all: BTreeSet<_> = by_a.iter().chain(&by_b).collect();
    assert_eq!(by_a.len() + by_b.len(), 60, "claimed once each");
    assert_eq!(all.len(), 60);
    // Each worker holds its own: the other can neither renew nor finish them. (On a
    // busy machine one worker may have claimed all sixty: SQLite has one writer.)
    let (holder, other, held) = if by_a.is_empty() {
        (&b, &a, &by_b)
    } else {
        (&a, &b, &by_a)
    };
    let job = holder.get(held[0]).await.unwrap();
    assert_eq!(job.locked_by.as_deref(), Some(holder.worker_id()));
    assert!(
        !other
            .heartbeat(job.id, Duration::seconds(30))
            .await
            .unwrap()
    );
    assert!(!other.complete(&job).await.unwrap());
    assert!(holder.complete(&job).await.unwrap());
    assert_eq!(holder.get(job.id).await.unwrap().state, JobState::Done);
}

#[tokio::test]
async fn a_failing_job_backs_off_then_dies_with_its_last_error_and_an_operator_retries_or_cancels_it()
 {
    let app = TestApp::spawn().await;
    let queue = app.state.jobs.clone();
    let tries = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(queue.clone(), settings()).handle(KIND, {
        let tries = tries.clone();
        move |job| {
            let tries = tries.clone();
            Box::pin(async move {
                let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
                Err(format!("attempt {n} of job {} failed", job.id))
            })
        }
    });
    let mut job = NewJob::new(KIND, json!({}));
    job.max_attempts = 3;
    queue.enqueue(app.state.db.conn(), job).await.unwrap();

    assert_eq!(worker.run_until_idle().await, 1);
    let failed = &queue.list(None, Some(KIND)).await.unwrap()[0];
    assert_eq!((failed.state, failed.attempts), (JobState::Pending, 1));
    let wait = failed.run_at - app.clock.now();
    assert!(
        wait >= Duration::milliseconds(2_500) && wait <= Duration::seconds(5),
        "{wait}"
    );
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("attempt 1")
    );
    // Not before its time.
    assert_eq!(worker.run_until_idle().await, 0);
    app.clock.advance(Duration::seconds(5));
    assert_eq!(worker.run_until_idle().await, 1);
    app.clock.advance(Duration::seconds(10));
    assert_eq!(worker.run_until_idle().await, 1);
    let dead = queue.get(failed.id).await.unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 3));
    assert!(dead.last_error.as_deref().unwrap().starts_with("attempt 3"));
    app.clock.advance(Duration::hours(2));
    assert_eq!(worker.run_until_idle().await, 0, "the dead stay dead");
    assert_eq!(tries.load(Ordering::SeqCst), 3);

    // An operator brings it back; it runs again at once.
    let retried = queue.retry(dead.id).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (JobState::Pending, 0));
    assert_eq!(worker.run_until_idle().await, 1);
    assert_eq!(tries.load(Ordering::SeqCst), 4);
    // Cancelled while pending; a cancelled job is not cancelled twice nor claimed.
    assert_eq!(
        queue.cancel(dead.id).await.unwrap().state,
        JobState::Cancelled
    );
    let again = queue.cancel(dead.id).await.unwrap_err();
    assert_eq!(again.code(), kernel::ErrorCode::Conflict, "{again}");
    app.clock.advance(Duration::hours(2));
    assert_eq!(worker.run_until_idle().await, 0);
    let missing = queue.retry(uuid::Uuid::now_v7()).await.unwrap_err();
    assert_eq!(missing.code(), kernel::ErrorCode::NotFound);
    // Finished jobs go after a while; the rest stay.
    assert_eq!(
        queue
            .delete_finished_before(app.clock.now() + Duration::seconds(1), None)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_job_whose_worker_died_runs_again_after_its_lease_and_its_effect_happens_once() {
    let app = TestApp::spawn().await;
    let dead_worker = another_worker(&app);
    let effects = Arc::new(AtomicUsize::new(0));
    let survivor = Worker::new(app.state.jobs.clone(), settings()).handle(KIND, {
        let effects = effects.clone();
        move |_job| {
            let effects = effects.clone();
            Box::pin(async move {
                effects.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    });
    dead_worker
        .enqueue(app.state.db.conn(), NewJob::new(KIND, json!({})))
        .await
        .unwrap();
    // The first worker claims it and dies before finishing.
    let taken = dead_worker
        .claim(&[KIND], 10, settings().lease)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(survivor.run_until_idle().await, 0, "the lease still holds");
    app.clock.advance(Duration::seconds(31));
    assert_eq!(survivor.run_until_idle().await, 1);
    assert_eq!(effects.load(Ordering::SeqCst), 1);
    let done = app.state.jobs.get(taken[0].id).await.unwrap();
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    // The dead worker's late word changes nothing.
    assert!(!dead_worker.complete(&taken[0]).await.unwrap());
    assert_eq!(dead_worker.fail(&taken[0], "late").await.unwrap(), None);
    assert_eq!(
        app.state.jobs.get(done.id).await.unwrap().state,
        JobState::Done
    );
    app.clock.advance(Duration::hours(1));
    assert_eq!(survivor.run_until_idle().await, 0);
    assert_eq!(effects.load(Ordering::SeqCst), 1);

    // A job whose worker dies on its last attempt is dead, not run again.
    let mut last = NewJob::new(KIND, json!({}));
    last.max_attempts = 1;
    dead_worker
        .enqueue(app.state.db.conn(), last)
        .await
        .unwrap();
    let taken = dead_worker
        .claim(&[KIND], 1, settings().lease)
        .await
        .unwrap();
    app.clock.advance(Duration::seconds(31));
    assert_eq!(survivor.run_until_idle().await, 0);
    let dead = app.state.jobs.get(taken[0].id).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.last_error.unwrap().contains("worker stopped"));
}

/// Two server instances on one database both schedule the billing run of the same
/// interval: one job per organization is kept, their workers share the jobs, and every
/// organization is invoiced exactly once.
#[tokio::test]
async fn two_instances_share_the_billing_of_two_hundred_organizations_and_bill_each_once() {
    use crate::billing::{METERED, at, change_plan};
    const ORGANIZATIONS: usize = 200;
    let app = TestApp::spawn().await;
    let twin = app.spawn_twin().await;
    app.clock.set(at("2027-01-10T09:00:00Z"));
    gateway::catalog::import_catalog(&app.state, &billing::CatalogFile::parse(METERED).unwrap())
        .await
        .unwrap();
    let owner = app.user("owner@example.com").await;
    for n in 0..ORGANIZATIONS {
        let org = app.org(&owner, &format!("Customer {n}")).await;
        change_plan(&app, &owner, &org, "metered", Some("UTC"))
            .await
            .data();
    }
    // The period ends; both instances' timers fire for the same interval.
    app.clock.set(at("2027-02-10T00:00:01Z"));
    let every = std::time::Duration::from_secs(3_600);
    let slot = gateway::background::schedule::slot(app.clock.now(), every);
    let (a, b) = tokio::join!(
        gateway::background::billing_run::schedule(&app.state, slot),
        gateway::background::billing_run::schedule(&twin.state, slot)
    );
    // Every organization and the platform's own account, once.
    assert_eq!(a.unwrap() + b.unwrap(), ORGANIZATIONS + 1);

    // The instances' own workers run them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let done = loop {
        let done = app
            .state
            .jobs
            .list(
                Some(JobState::Done),
                Some(gateway::background::job_kinds::BILLING_ORGANIZATION),
            )
            .await
            .unwrap();
        if done.len() == ORGANIZATIONS + 1 {
            break done;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} billing jobs done; counts: {:?}",
            done.len(),
            ORGANIZATIONS + 1,
            app.state.jobs.counts().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let workers = [app.state.jobs.worker_id(), twin.state.jobs.worker_id()];
    let share = |worker: &str| {
        done.iter()
            .filter(|j| j.locked_by.as_deref() == Some(worker))
            .count()
    };
    assert_eq!(share(workers[0]) + share(workers[1]), ORGANIZATIONS + 1);
    assert!(
        share(workers[0]) > 0 && share(workers[1]) > 0,
        "each instance takes a share: {} and {}",
        share(workers[0]),
        share(workers[1])
    );
    assert!(done.iter().all(|j| j.attempts == 1));

    // Each organization: the first period's invoice and the renewal's, nothing twice.
    let (db, backend) = app.whole_database().await;
    use sea_orm::ConnectionTrait;
    let per_org = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT count(*) FROM invoices GROUP BY organization_id",
        ))
        .await
        .unwrap();
    assert_eq!(per_org.len(), ORGANIZATIONS);
    for row in per_org {
        assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 2);
    }
    // The same interval scheduled again adds nothing.
    assert_eq!(
        gateway::background::billing_run::schedule(&twin.state, slot)
            .await
            .unwrap(),
        0
    );
    // Done billing jobs are kept for ten intervals, then go; other kinds stay.
    app.state
        .jobs
        .enqueue(app.state.db.conn(), NewJob::new(KIND, json!({})))
        .await
        .unwrap();
    let forget = || gateway::background::billing_run::forget_old_jobs(&app.state, every);
    assert_eq!(forget().await.unwrap(), 0);
    app.clock
        .advance(Duration::hours(10) + Duration::seconds(1));
    assert_eq!(forget().await.unwrap(), (ORGANIZATIONS + 1) as u64);
    assert_eq!(
        app.state.jobs.list(None, Some(KIND)).await.unwrap().len(),
        1
    );
}

/// The retention run of an interval is one job, whichever instances schedule it, run by
/// one of their workers.
#[tokio::test]
async fn the_retention_run_of_an_interval_runs_once_whichever_instances_schedule_it() {
    let app = TestApp::spawn().await;
    let twin = app.spawn_twin().await;
    let slot = gateway::background::schedule::slot(
        kernel::Clock::now(&app.clock),
        std::time::Duration::from_secs(3_600),
    );
    let (a, b) = tokio::join!(
        gateway::background::retention_run::schedule(&app.state, slot),
        gateway::background::retention_run::schedule(&twin.state, slot)
    );
    assert_eq!(
        u8::from(a.unwrap()) + u8::from(b.unwrap()),
        1,
        "one job for the interval"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let runs = app
            .state
            .jobs
            .list(None, Some(gateway::background::job_kinds::RETENTION_RUN))
            .await
            .unwrap();
        assert_eq!(runs.len(), 1);
        if runs[0].state == JobState::Done {
            assert_eq!(runs[0].attempts, 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{runs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The next interval is a new run.
    assert!(
        gateway::background::retention_run::schedule(&twin.state, slot + 1)
            .await
            .unwrap()
    );
}
