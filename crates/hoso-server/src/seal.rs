//! The province's seal on its disclosures: the signing key of `[disclosure] signing_key_file`,
//! and the log's head hash at a disclosure's cut-off (`hoso_store::head_hash`), kept as it is
//! computed so that each disclosure hashes only the events since the last checkpoint before it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use hoso_disclosure::{LogHead, SigningKey};
use hoso_store::{EMPTY_HEAD_HASH, EventStore, Position, StoreError};
use tokio::sync::Mutex;

/// A head hash is kept for every position that is a multiple of this, and the last one computed.
const CHECKPOINT_EVERY: Position = 65_536;

/// The signing key and the head hashes computed so far.
pub struct Sealer {
    key: Option<SigningKey>,
    /// Head hashes by position (always at least position 0).
    heads: Mutex<BTreeMap<Position, [u8; 32]>>,
}

impl Sealer {
    /// A sealer with `key`, or one that leaves disclosures unsigned (they still name the log's
    /// position and head hash).
    pub fn new(key: Option<SigningKey>) -> Sealer {
        Sealer {
            key,
            heads: Mutex::new(BTreeMap::from([(0, EMPTY_HEAD_HASH)])),
        }
    }

    /// Reads the signing key from `path` (PKCS#8 PEM, as `hoso disclosure-key new` writes it).
    pub fn from_key_file(path: Option<&Path>) -> anyhow::Result<Sealer> {
        let Some(path) = path else {
            return Ok(Sealer::new(None));
        };
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the disclosure signing key {} ([disclosure] signing_key_file)",
                path.display()
            )
        })?;
        let key = hoso_disclosure::signature::signing_key_from_pem(&text).with_context(|| {
            format!(
                "{} ([disclosure] signing_key_file) is not a signing key; make one with `hoso disclosure-key new FILE`",
                path.display()
            )
        })?;
        Ok(Sealer::new(Some(key)))
    }

    /// The key disclosures are signed with.
    pub fn key(&self) -> Option<&SigningKey> {
        self.key.as_ref()
    }

    /// Where `cutoff` falls among the first `upper` events of `store` (the events the figures
    /// were computed from), and the head hash there.
    pub async fn head_at<S: EventStore>(
        &self,
        store: &S,
        cutoff: DateTime<Utc>,
        upper: Position,
    ) -> Result<LogHead, StoreError> {
        let position = hoso_store::position_at(store, cutoff, upper).await?;
        // One disclosure hashes at a time: a second one waits and starts from the first's end.
        let mut heads = self.heads.lock().await;
        let (mut at, mut hash) = heads
            .range(..=position)
            .next_back()
            .map(|(&p, &h)| (p, h))
            .unwrap_or((0, EMPTY_HEAD_HASH));
        while at < position {
            let to = ((at / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY).min(position);
            hash = hoso_store::head_hash(store, at, hash, to).await?;
            at = to;
            heads.insert(at, hash);
        }
        // Keeps the multiples and the last one only.
        heads.retain(|&p, _| p % CHECKPOINT_EVERY == 0 || p == position);
        Ok(LogHead { position, hash })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use hoso_store::{ExpectedVersion, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn the_head_at_a_cut_off_is_the_hash_over_the_events_recorded_by_then_however_it_was_reached() {
        let store = MemoryStore::new();
        for i in 0..5 {
            let events = (0..3)
                .map(|j| hoso_store::conformance::event(&format!("{i}-{j}")))
                .collect();
            store
                .append(&format!("s{i}"), ExpectedVersion::Any, events)
                .await
                .unwrap();
        }
        let sealer = Sealer::new(None);
        let at_nine = store.read_all(8, 1).await.unwrap()[0].recorded_at;
        let whole = hoso_store::head_hash(&store, 0, EMPTY_HEAD_HASH, 15).await.unwrap();
        let nine = hoso_store::head_hash(&store, 0, EMPTY_HEAD_HASH, 9).await.unwrap();
        // Out of order on purpose: a later head first, then an earlier one, then the later again.
        let far = Utc::now() + TimeDelta::days(1);
        assert_eq!(
            sealer.head_at(&store, far, 15).await.unwrap(),
            LogHead {
                position: 15,
                hash: whole
            }
        );
        assert_eq!(
            sealer.head_at(&store, at_nine, 15).await.unwrap(),
            LogHead {
                position: 9,
                hash: nine
            }
        );
        assert_eq!(
            sealer.head_at(&store, far, 15).await.unwrap(),
            LogHead {
                position: 15,
                hash: whole
            }
        );
        // Bounded by the events the figures counted.
        let twelve = hoso_store::head_hash(&store, 0, EMPTY_HEAD_HASH, 12).await.unwrap();
        assert_eq!(
            sealer.head_at(&store, far, 12).await.unwrap(),
            LogHead {
                position: 12,
                hash: twelve
            }
        );
    }
}
