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
//! cannot be stored gets the error (and a database that is down fails them all).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// The most items committed in one transaction.
const MAX_BATCH: usize = 256;

type Reply<O> = oneshot::Sender<Result<O, String>>;

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
#[error("not stored: {0}")]
pub struct NotStored(String);

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Starts the writer task. `write` stores a batch in one transaction and returns
    /// the batch with one result per item, in order. The task ends when every
    /// handle is dropped; its handle says whether it ended early (a panic).
    pub fn start<F, Fut>(write: F) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: Fn(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = (Vec<I>, Result<Vec<O>, String>)> + Send,
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
                    (items, Err(_)) if several => {
                        // Find the culprit: each item alone.
                        for (item, reply) in items.into_iter().zip(replies) {
                            let (_, result) = write(vec![item]).await;
                            let result = result.and_then(|mut r| {
                                r.pop()
                                    .ok_or_else(|| "the writer returned no result".into())
                            });
                            let _ = reply.send(result);
                        }
                    }
                    (_, Err(message)) => {
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
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
            .map_err(|_| NotStored("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| NotStored("the writer has stopped".into()))?
            .map_err(NotStored)
    }
}
