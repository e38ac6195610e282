//! Opening the PostgreSQL store that `store = "postgres://..."` names (the `postgres` feature).

use anyhow::Result;
use hoso_store::EventStore;
use hoso_store_pg::{PgOptions, PgStore};

use crate::config::redact_store_url;

/// Connects to the database at `url` and brings its schema up to date; every failure names the
/// `store` setting and the URL without its password, so that an operator knows what to fix.
pub(crate) async fn open(url: &str) -> Result<PgStore> {
    let shown = redact_store_url(url);
    let store = PgStore::connect(url, PgOptions::default()).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot open the PostgreSQL store that store (--store, HOSO_STORE or `store` in the configuration) \
             names, {shown}: {err}"
        )
    })?;
    tracing::info!(store = %shown, head = store.head(), "PostgreSQL store opened");
    Ok(store)
}
