//! The schema, versioned in `schema/*.sql` and applied on open.

use hoso_store::StoreError;
use tokio_postgres::Client;

use crate::conn::unavailable;

/// The schema files in order: the file at index i takes the schema to version i + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../schema/0001_events.sql"),
    include_str!("../schema/0002_store_id.sql"),
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Key of the transaction-level advisory lock that serializes stores opening at once, so that
/// two processes never apply the same schema file twice.
const MIGRATION_LOCK: i64 = 0x686f_736f_0000_0001;

/// Brings the database to [`SCHEMA_VERSION`] in one transaction, or refuses a database whose
/// schema is newer than this build knows (an older build must not write into a newer layout).
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let failed = |err: tokio_postgres::Error| unavailable(&err, "cannot apply the store's schema");
    let encoding: String = client
        .query_one("SHOW server_encoding", &[])
        .await
        .map_err(failed)?
        .try_get(0)
        .map_err(failed)?;
    if encoding != "UTF8" {
        return Err(StoreError::Io(format!(
            "the database's encoding is {encoding}; the store needs a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8')"
        )));
    }
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hoso_schema_version (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             version integer NOT NULL
         )",
    )
    .await
    .map_err(failed)?;
    let found = match tx
        .query_opt("SELECT version FROM hoso_schema_version", &[])
        .await
        .map_err(failed)?
    {
        Some(row) => {
            let version: i32 = row.try_get(0).map_err(failed)?;
            u32::try_from(version).map_err(|_| StoreError::Corrupted {
                position: 0,
                reason: format!("the schema version recorded in the database is {version}"),
            })?
        }
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedFormat {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)
            .await
            .map_err(|err| unavailable(&err, &format!("cannot apply schema version {}", i + 1)))?;
    }
    if found < SCHEMA_VERSION {
        // SCHEMA_VERSION is the length of a short constant list: it fits an integer.
        let version = SCHEMA_VERSION as i32;
        tx.execute(
            "INSERT INTO hoso_schema_version (singleton, version) VALUES (true, $1)
             ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
            &[&version],
        )
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}
