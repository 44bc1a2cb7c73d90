//! Group commit: many requests, one transaction.
//!
//! Every request handler waits until what it submitted is committed before it
//! answers (nothing acknowledged is lost). Committing each item in its own
//! transaction would make SQLite's single writer the bottleneck; instead one
//! writer task commits everything that arrived while the previous commit was
//! running, in one transaction. Under light load a batch is a single item and
//! adds no delay. Webhook deliveries and CI signals both come in this way.
//!
//! One bad item never fails the others: when a batch's transaction fails, each
//! item is written again in a transaction of its own, so only the item that
//! cannot be stored gets the error. A database that cannot be reached fails the
//! whole batch at once: trying each item alone would only make every request
//! wait once more per item before it hears so.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// The most items committed in one transaction.
const MAX_BATCH: usize = 256;

type Reply<O> = oneshot::Sender<Result<O, WriteFailure>>;

/// Why a batch was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFailure {
    pub message: String,
    /// The backend could not be reached (every item would fail alike).
    pub unavailable: bool,
    /// What failed, for logs (a statement's name), when known.
    pub statement: Option<&'static str>,
}

impl WriteFailure {
    fn writer_stopped() -> WriteFailure {
        WriteFailure {
            message: "the writer has stopped".into(),
            unavailable: true,
            statement: None,
        }
    }
}

pub struct GroupCommit<I, O> {
    queue: mpsc::Sender<(I, Reply<O>)>,
}

impl<I, O> Clone for GroupCommit<I, O> {
    fn clone(&self) -> Self {
        GroupCommit {
            queue: self.queue.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not stored: {}", .0.message)]
pub struct NotStored(WriteFailure);

impl NotStored {
    pub fn failure(&self) -> &WriteFailure {
        &self.0
    }
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts the writer task. `write` stores a batch in one transaction and returns
    /// the batch with one result per item, in order. The task ends when every
    /// handle is dropped; its handle says whether it ended early (a panic).
    pub fn start<F, Fut>(write: F) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = (Vec<I>, Result<Vec<O>, WriteFailure>)> + Send,
    {
        let (queue, mut requests) = mpsc::channel::<(I, Reply<O>)>(4 * MAX_BATCH);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.drain(..).unzip();
                let several = items.len() > 1;
                match write(items).await {
                    (_, Ok(results)) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    (items, Err(failure)) if several && !failure.unavailable => {
                        // Find the culprit: each item alone.
                        for (item, reply) in items.into_iter().zip(replies) {
                            let (_, result) = write(vec![item]).await;
                            let result = result.and_then(|mut r| {
                                r.pop().ok_or_else(|| WriteFailure {
                                    message: "the writer returned no result".into(),
                                    unavailable: false,
                                    statement: None,
                                })
                            });
                            let _ = reply.send(result);
                        }
                    }
                    (_, Err(failure)) => {
                        for reply in replies {
                            let _ = reply.send(Err(failure.clone()));
                        }
                    }
                }
            }
        });
        (GroupCommit { queue }, task)
    }

    /// Submits one item and waits until it is committed (or the commit failed).
    pub async fn submit(&self, item: I) -> Result<O, NotStored> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((item, reply))
            .await
            .map_err(|_| NotStored(WriteFailure::writer_stopped()))?;
        answer
            .await
            .map_err(|_| NotStored(WriteFailure::writer_stopped()))?
            .map_err(NotStored)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn failure(unavailable: bool) -> WriteFailure {
        WriteFailure {
            message: "no".into(),
            unavailable,
            statement: Some("things::insert"),
        }
    }

    /// Starts a writer whose every write fails as `unavailable` says, counting writes;
    /// the first write waits until `items` requests are queued, so they form one batch.
    async fn failing_batch(items: usize, unavailable: bool) -> (Vec<NotStored>, usize) {
        let writes = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (writer, _task) = {
            let (writes, gate) = (writes.clone(), gate.clone());
            GroupCommit::<u32, u32>::start(move |batch| {
                let (writes, gate) = (writes.clone(), gate.clone());
                async move {
                    if writes.fetch_add(1, Ordering::SeqCst) == 0 {
                        let _ = gate.acquire().await;
                    }
                    (batch, Err(failure(unavailable)))
                }
            })
        };
        // The first item occupies the writer until the others are queued behind it.
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.submit(0).await }
        });
        while writes.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..items as u32)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.submit(i).await })
            })
            .collect();
        while writer.queue.capacity() > writer.queue.max_capacity() - (items - 1) {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        let mut errors = vec![first.await.unwrap().unwrap_err()];
        for task in rest {
            errors.push(task.await.unwrap().unwrap_err());
        }
        (errors, writes.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_a_batch_at_once() {
        let (errors, writes) = failing_batch(5, true).await;
        // One write for the first item, one for the batch of four: never item by item.
        assert_eq!(writes, 2);
        assert!(errors.iter().all(|e| e.failure().unavailable));
        assert_eq!(errors[3].failure().statement, Some("things::insert"));
    }

    #[tokio::test]
    async fn a_refused_batch_is_retried_item_by_item() {
        let (errors, writes) = failing_batch(5, false).await;
        // The first item, the batch of four, then each of the four alone.
        assert_eq!(writes, 6);
        assert!(errors.iter().all(|e| !e.failure().unavailable));
    }
}
