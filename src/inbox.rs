//! Durable intake of webhook deliveries with group commit.
//!
//! Every request handler waits until its delivery is committed before it
//! answers. Committing each one in its own transaction would cost one disk sync
//! per delivery (SQLite, `synchronous = FULL`); instead one writer task commits
//! whatever arrived while the previous commit was running, in one transaction.
//! Under light load a batch is a single delivery and adds no delay.

use tokio::sync::{Notify, mpsc, oneshot};

use std::sync::Arc;

use crate::store::Store;
use crate::store::deliveries::{Inserted, NewDelivery};

/// The most deliveries committed in one transaction.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Inserted, String>>;

#[derive(Clone)]
pub struct Inbox {
    queue: mpsc::Sender<(NewDelivery, Reply)>,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery not stored: {0}")]
pub struct InboxError(String);

impl Inbox {
    /// Starts the writer task; `stored` is notified after each commit that stored something.
    pub fn start(store: Store, stored: Arc<Notify>) -> Inbox {
        let (queue, requests) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store, requests, stored));
        Inbox { queue }
    }

    /// Stores the delivery durably (or finds it stored before) and says which.
    pub async fn store(&self, delivery: NewDelivery) -> Result<Inserted, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((delivery, reply))
            .await
            .map_err(|_| InboxError("the inbox writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| InboxError("the inbox writer has stopped".into()))?
            .map_err(InboxError)
    }
}

async fn write_batches(
    store: Store,
    mut requests: mpsc::Receiver<(NewDelivery, Reply)>,
    stored: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Ends when every `Inbox` handle is gone (the server has shut down).
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (deliveries, replies): (Vec<NewDelivery>, Vec<Reply>) = batch.drain(..).unzip();
        match store.insert_deliveries(&deliveries).await {
            Ok(results) => {
                if results.contains(&Inserted::Stored) {
                    stored.notify_one();
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
