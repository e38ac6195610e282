//! `PgStore`'s side: hoso's PostgreSQL store on the same server as the plain-table baseline,
//! driven through the `EventStore` trait exactly as the embedded store is.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hoso_store_pg::{PgOptions, PgStore};

use crate::{AppendFigures, Window, appenders, pg};

/// The database each configuration's store is made in, afresh.
const DATABASE: &str = "hoso_bench_pgstore";

/// `PgStore`'s side of an append configuration (`appenders::run`), on a fresh database of the
/// server at `url`.
pub(crate) async fn appends(
    url: &str,
    appenders: usize,
    batch: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<AppendFigures> {
    let admin = pg::connect(url).await?;
    // FORCE: the previous configuration's store may still be closing its connections.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    admin.batch_execute(&format!("CREATE DATABASE {DATABASE}")).await?;
    let store_url = with_database(url, DATABASE);
    let store = PgStore::connect(&store_url, PgOptions::default())
        .await
        .context("cannot open PgStore")?;
    let window = Window::starting_now(warmup, duration);
    let latencies_us = appenders::run(&store, appenders, batch, window).await?;
    let elapsed = window.elapsed();
    store.close();
    drop(store);
    // Untimed, as the plain table's: the vacuum autovacuum would start, then a checkpoint.
    let closing = Instant::now();
    let client = pg::connect(&store_url).await?;
    client.batch_execute("VACUUM ANALYZE hoso_events").await?;
    client.batch_execute("VACUUM ANALYZE hoso_log_head").await?;
    client.batch_execute("CHECKPOINT").await?;
    eprintln!("  vacuum and checkpoint: {:.2} s", closing.elapsed().as_secs_f64());
    Ok(AppendFigures {
        appenders,
        batch,
        appends: latencies_us.len() as u64,
        elapsed,
        latencies_us,
    })
}

/// `url` naming database `name` instead of its own: a URL's path, or a `dbname` added to a
/// `key=value` connection string (where the last one given counts).
fn with_database(url: &str, name: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return format!("{url} dbname={name}");
    };
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    format!("{scheme}{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn names_another_database_in_urls_and_connection_strings() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:55432/postgres", "b"),
            "postgres://postgres@127.0.0.1:55432/b"
        );
        assert_eq!(
            with_database("postgresql://u@h/db?sslmode=disable", "b"),
            "postgresql://u@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
        assert_eq!(with_database("postgres://u@h?x=1", "b"), "postgres://u@h/b?x=1");
        assert_eq!(
            with_database("host=/tmp user=postgres dbname=postgres", "b"),
            "host=/tmp user=postgres dbname=postgres dbname=b"
        );
    }
}
