-- The group commit's plan must look a stream's version up through its index, whatever the
-- statistics said when the plan was made. orderly_append_batch (0005) keeps one generic plan per
-- connection (plan_cache_mode = force_generic_plan); a connection that first ran it while the events
-- table was empty or newly truncated (a fresh install, the benchmark's every measurement) planned
-- "max(stream_version) of the stream" as a sequential scan of the whole table, run once per command,
-- and kept that plan until an autovacuum ANALYZE invalidated it (up to a minute or more later).
-- Measured (auto_explain, 100 orders/s, 2026-12-04 14:57 UTC): one batch of 33 commands scanned
-- 14,835 events 33 times, 314 ms of CPU, growing with every event appended: the saga's stalls.
-- With sequential scans off inside the function the planner takes the (stream_id, stream_version)
-- index for that lookup and the primary key of idempotency_keys for the key lookup, from the first
-- call on; nothing in the function needs a sequential scan.
ALTER FUNCTION orderly_append_batch(
    text[], bigint[], integer[], text[], text[], integer[], integer[], uuid[], text[], integer[], jsonb[], jsonb[])
    SET enable_seqscan = off;
