//! Catch-up-then-live subscriptions to `$all`.
//!
//! A subscription reads stored events in batches and, once it has caught up, waits for the
//! durable head to move and reads again. It never holds more than one batch, so a slow
//! subscriber costs writers nothing and its memory stays bounded: when it falls behind it
//! simply catches up from storage. Because it only ever reads below the durable head, it sees
//! durable events only, in `$all` order, with no gap and no duplicate across the switch.

use std::collections::VecDeque;

use tokio::sync::watch;

use crate::{EventStore, Position, RecordedEvent, StoreError};

/// How many events one catch-up read fetches.
const BATCH: usize = 512;

/// A subscription to `$all`, created by [`EventStore::subscribe_all`].
pub struct Subscription<S> {
    store: S,
    next: Position,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<Position>,
}

impl<S: EventStore> Subscription<S> {
    pub(crate) fn new(store: S, from: Position) -> Self {
        let head = store.watch_head();
        Subscription {
            store,
            next: from,
            buffer: VecDeque::new(),
            head,
        }
    }

    /// The next event, waiting for one to become durable if the subscriber is caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.next = event.position + 1;
                return Ok(event);
            }
            let head = *self.head.borrow_and_update();
            if head > self.next {
                let batch = self.store.read_all(self.next, BATCH).await?;
                if batch.is_empty() {
                    return Err(StoreError::Corrupted {
                        position: self.next,
                        reason: "the log ends before its durable head".to_owned(),
                    });
                }
                self.buffer.extend(batch);
                continue;
            }
            self.head.changed().await.map_err(|_| StoreError::Closed)?;
        }
    }

    /// The position of the next event this subscription will deliver.
    pub fn position(&self) -> Position {
        self.next
    }

    /// True when every durable event up to now has been delivered.
    pub fn is_caught_up(&self) -> bool {
        self.buffer.is_empty() && self.next >= self.store.head()
    }
}
