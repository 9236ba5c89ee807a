//! The operation's loader batches, run on the operation's own task.
//!
//! A DataLoader collects the keys its callers ask for and loads them in one batch when
//! its fetch task runs. Spawned on the runtime behind a 1 ms timer, that task raced the
//! resolvers on another thread: on a busy machine it fired while a page's rows were
//! still asking, so one batch became two or three, each a query (and before the unit of
//! work, a transaction). Here the fetch tasks are polled by [`OperationTasks::run`],
//! on the operation's task, only after the operation itself has been polled: every
//! resolver that can ask has asked, so a batch holds every key of that pass.

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// The fetch tasks of one operation (cheap to clone: all clones are the same queue).
#[derive(Clone, Default)]
pub struct OperationTasks(Arc<Mutex<Queue>>);

#[derive(Default)]
struct Queue {
    /// Spawned, not yet polled.
    spawned: Vec<BoxFuture<'static, ()>>,
    /// Wakes [`OperationTasks::run`] when a task is spawned.
    waker: Option<Waker>,
}

impl OperationTasks {
    /// What a DataLoader spawns its fetch tasks with.
    pub fn spawner(&self) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
        let queue = self.0.clone();
        move |task| {
            let mut queue = queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.spawned.push(task);
            if let Some(waker) = queue.waker.take() {
                waker.wake();
            }
        }
    }

    /// Runs `operation` to its end, polling the tasks it spawns only when it is blocked:
    /// after a pass in which it did not wake itself (a list of more than 32 items is
    /// polled in passes that yield in between; tokio's budget yields too). Tasks still
    /// running when it ends are dropped (nothing awaits them any more).
    pub async fn run<F: Future>(&self, operation: F) -> F::Output {
        let mut operation = pin!(operation);
        let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
        let woken = Arc::new(WakeFlag::default());
        std::future::poll_fn(|cx| {
            loop {
                woken.set_waker(cx.waker());
                // Wakes before this poll are answered by it.
                woken.take();
                let waker = futures::task::waker(woken.clone());
                let mut operation_cx = std::task::Context::from_waker(&waker);
                if let Poll::Ready(output) = operation.as_mut().poll(&mut operation_cx) {
                    return Poll::Ready(output);
                }
                if woken.take() {
                    // It yielded (or was woken meanwhile): it has more to ask before
                    // the batches run. The wake reached this task's waker too.
                    return Poll::Pending;
                }
                let spawned = {
                    let mut queue = self.0.lock().unwrap_or_else(|p| p.into_inner());
                    queue.waker = Some(cx.waker().clone());
                    std::mem::take(&mut queue.spawned)
                };
                running.extend(spawned);
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
                let spawned_more = !self
                    .0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spawned
                    .is_empty();
                // A finished task may have woken the operation: its turn again.
                if !spawned_more && !woken.take() {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

/// The operation's waker: records that it was woken, and wakes the task.
#[derive(Default)]
struct WakeFlag {
    woken: std::sync::atomic::AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl WakeFlag {
    fn set_waker(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if !task.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }

    fn take(&self) -> bool {
        self.woken.swap(false, std::sync::atomic::Ordering::AcqRel)
    }
}

impl futures::task::ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self
            .woken
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(waker) = arc_self
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            waker.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn spawned_tasks_run_after_the_operation_and_finish_before_it() {
        let tasks = OperationTasks::default();
        let spawn = tasks.spawner();
        let ran = Arc::new(AtomicUsize::new(0));
        let (done, finished) = tokio::sync::oneshot::channel();
        let output = tasks
            .run(async {
                let ran_in_task = ran.clone();
                spawn(Box::pin(async move {
                    tokio::task::yield_now().await;
                    ran_in_task.fetch_add(1, Ordering::SeqCst);
                    let _ = done.send(());
                }));
                // Not yet: the task runs only once the operation has been polled.
                assert_eq!(ran.load(Ordering::SeqCst), 0);
                finished.await.expect("the task ran");
                7
            })
            .await;
        assert_eq!(output, 7);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
