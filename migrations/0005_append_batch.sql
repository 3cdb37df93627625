-- Group commit as one statement: the appends of many concurrent commands in one transaction and one
-- round trip, each command with its own expected version and idempotency key, a conflict of one
-- writing nothing for it and leaving the others alone. Replaces 0004's orderly_append_many, which
-- did the same one command at a time in PL/pgSQL, behind advisory locks: about twice the database
-- time per batch.
--
-- No lock. Each command's version is read in the statement's snapshot and the unique indexes catch
-- a concurrent writer ((stream_id, stream_version); the idempotency key): the whole statement then
-- fails and the caller appends its commands one by one with orderly_append (which waits for its
-- stream's lock). Tailing readers read in (transaction id, position) order and need each stream in
-- version order: a command writes version v + 1 only when version v was visible to this statement
-- (otherwise it reads a lower version and its insert hits the unique index), so the writer of v had
-- committed before the statement began, and this transaction's id, taken at its first insert, is
-- higher. The caller sends distinct streams and keys per batch, sorted by stream, so concurrent
-- batches insert in one order and never wait for each other in a cycle.
--
-- Command i is (p_streams[i], p_expected[i] (-1: any, 0: no stream, n: exactly n), p_counts[i]
-- events, p_keys[i] ('': none), p_requests[i]); event j belongs to command p_event_command[j] and is
-- its p_event_step[j]-th. One row per command, in command order: status 0 appended (or replayed by
-- its key), 1 wrong expected version (the actual one in out_actual), 2 idempotency key reused with
-- another request.
--
-- A function, not a statement sent as text, for its plan: the statement's cached plan is generic
-- (the SET below); as a prepared statement the server planned it anew on every call, which cost
-- more than running it.
CREATE FUNCTION orderly_append_batch(
    p_streams text[], p_expected bigint[], p_counts integer[], p_keys text[], p_requests text[],
    p_event_command integer[], p_event_step integer[], p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (out_command integer, out_status integer, out_version bigint, out_position bigint, out_replayed boolean,
               out_actual bigint, out_stream text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    WITH command AS (
        SELECT c.i::integer AS i, c.stream, c.expected, c.count, c.key,
               CASE WHEN c.key <> '' THEN encode(sha256(convert_to(c.request, 'UTF8')), 'hex') END AS hash,
               k.request_hash AS stored_hash, k.stream_id AS stored_stream, k.stream_version AS stored_version,
               k.position AS stored_position,
               coalesce((SELECT max(e.stream_version) FROM events AS e WHERE e.stream_id = c.stream), 0) AS current
        FROM unnest(p_streams, p_expected, p_counts, p_keys, p_requests) WITH ORDINALITY AS c(stream, expected, count, key, request, i)
        LEFT JOIN LATERAL (
            SELECT * FROM idempotency_keys AS stored WHERE c.key <> '' AND stored.key = c.key
        ) AS k ON true
    ),
    accepted AS (
        SELECT * FROM command WHERE command.stored_hash IS NULL AND (command.expected = -1 OR command.expected = command.current)
    ),
    inserted AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
        SELECT e.id, a.stream, a.current + e.step, e.type, e.schema_version, e.data, e.metadata
        FROM unnest(p_event_command, p_event_step, p_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS e(command, step, id, type, schema_version, data, metadata, n)
        JOIN accepted AS a ON a.i = e.command
        ORDER BY e.n
        RETURNING events.stream_id, events.position
    ),
    last AS (
        SELECT inserted.stream_id, max(inserted.position) AS position FROM inserted GROUP BY inserted.stream_id
    ),
    stored AS (
        INSERT INTO idempotency_keys (key, request_hash, stream_id, stream_version, position)
        SELECT a.key, a.hash, a.stream, a.current + a.count, l.position
        FROM accepted AS a JOIN last AS l ON l.stream_id = a.stream
        WHERE a.key <> ''
    )
    SELECT c.i,
           CASE WHEN c.stored_hash IS NOT NULL AND c.stored_hash <> c.hash THEN 2
                WHEN c.stored_hash IS NOT NULL THEN 0
                WHEN c.expected <> -1 AND c.expected <> c.current THEN 1
                ELSE 0 END,
           CASE WHEN c.stored_hash IS NOT NULL THEN c.stored_version ELSE c.current + c.count END,
           coalesce(CASE WHEN c.stored_hash IS NOT NULL THEN c.stored_position ELSE l.position END, 0),
           c.stored_hash IS NOT NULL,
           c.current,
           coalesce(c.stored_stream, c.stream)
    FROM command AS c LEFT JOIN last AS l ON l.stream_id = c.stream
    ORDER BY c.i;
END
$$;

DROP FUNCTION orderly_append_many(text[], bigint[], integer[], text[], text[], integer[], uuid[], text[], integer[], jsonb[], jsonb[]);
DROP FUNCTION orderly_lock_streams(text[]);
