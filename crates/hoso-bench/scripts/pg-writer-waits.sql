-- Where PgStore's writer spends its time, seen from the server: samples the state and wait event
-- of the store's connections in the benchmark's database every 2 ms, 2,500 times (about 5 s
-- plus the sampling's own time), and counts them by state, wait and statement. BENCHMARKS.md,
-- "The PostgreSQL store and the service on it". Run it while `hoso-bench store --sides pgstore
-- --pg URL` appends (a store's reader and follower connections are left out):
--   psql URL -f crates/hoso-bench/scripts/pg-writer-waits.sql
-- "idle in transaction / ClientRead": the writer's transaction waits for the hoso process (a
-- round trip, or the group being planned); "idle / ClientRead": between transactions;
-- "active / IO:WALSync": the commit's WAL flush; "CPU": no wait event (running or runnable).
CREATE TEMP TABLE samples (state text, wait text, statement text);
DO $$
BEGIN
  FOR i IN 1..2500 LOOP
    -- pg_stat_activity is read once per transaction unless its snapshot is cleared.
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO samples
      SELECT state, coalesce(wait_event_type || ':' || wait_event, 'CPU'),
             left(regexp_replace(query, '\s+', ' ', 'g'), 38)
      FROM pg_stat_activity
      WHERE datname = 'hoso_bench_pgstore' AND application_name = 'hoso' AND pid <> pg_backend_pid()
        AND query <> '' AND query NOT LIKE 'LISTEN%'
        AND query <> 'SELECT next_position FROM hoso_log_head';
    PERFORM pg_sleep(0.002);
  END LOOP;
END $$;
SELECT state, wait, statement, count(*) AS samples,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS percent
FROM samples GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 12;
