-- Group commit: the appends of many concurrent commands in one transaction and one round trip
-- (orderly_append_many), so that many writers share one commit (one WAL flush) instead of paying
-- one each. Every command keeps its own semantics: its expected version, its idempotency key, and a
-- conflict of one command writes nothing for it and does not disturb the others.
--
-- Ordering for tailing readers. Readers take events in (transaction id, position) order, which must
-- keep each stream in version order. A transaction gets its id at its first write. With one stream
-- per transaction, claiming the stream's row is the first write, so a writer waiting for that row
-- has no id yet and gets a higher one. A batch claims several streams' rows, and could get its id at
-- the first claim and then wait for another stream's row held by a writer with a higher id. So every
-- writer first takes a transaction-scoped advisory lock per stream, in one global order (the key's
-- numeric order), before any write: waiting for a lock never happens while holding an id. Both
-- functions take them; hash collisions only make two streams wait for each other.
--
-- Those locks alone serialise the writers of a stream, so a stream's current version is the highest
-- stream_version in `events` (one backward step of the (stream_id, stream_version) unique index, which
-- stays the backstop). The `streams` table of 0001, a second row written on every append, goes.

CREATE FUNCTION orderly_lock_streams(p_streams text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_key bigint;
BEGIN
    FOR v_key IN SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest(p_streams) AS s ORDER BY k LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
END
$$;

-- The single-command append of 0002, now under its stream's lock and with the version from `events`.
CREATE OR REPLACE FUNCTION orderly_append(
    p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[], p_idempotency_key text, p_request text)
RETURNS TABLE (out_stream text, out_version bigint, out_position bigint, out_replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint := cardinality(p_ids);
    v_current bigint;
    v_last bigint;
    v_hash text;
    v_key idempotency_keys%ROWTYPE;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        v_hash := encode(sha256(convert_to(p_request, 'UTF8')), 'hex');
        SELECT * INTO v_key FROM idempotency_keys WHERE key = p_idempotency_key;
        IF FOUND THEN
            IF v_key.request_hash <> v_hash THEN
                RAISE EXCEPTION USING ERRCODE = 'OR002', MESSAGE = 'idempotency key reused with a different request',
                    DETAIL = p_idempotency_key;
            END IF;
            RETURN QUERY SELECT v_key.stream_id, v_key.stream_version, v_key.position, true;
            RETURN;
        END IF;
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
    SELECT coalesce(max(stream_version), 0) INTO v_current FROM events WHERE stream_id = p_stream;
    IF p_expected IS NOT NULL AND p_expected <> v_current THEN
        RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = 'wrong expected version', DETAIL = v_current::text;
    END IF;

    WITH inserted AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
        SELECT e.id, p_stream, v_current + e.n, e.type, e.schema_version, e.data, e.metadata
        FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS e(id, type, schema_version, data, metadata, n)
        ORDER BY e.n
        RETURNING position
    )
    SELECT max(position) INTO v_last FROM inserted;

    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (key, request_hash, stream_id, stream_version, position)
        VALUES (p_idempotency_key, v_hash, p_stream, v_current + v_count, v_last);
    END IF;
    RETURN QUERY SELECT p_stream, v_current + v_count, v_last, false;
END
$$;

-- Many commands at once. Command i is (p_streams[i], p_expected[i] (-1: any, 0: no stream, n: exactly
-- n), p_counts[i] events, p_keys[i] ('' : none), p_requests[i]); event j belongs to command
-- p_event_command[j], in order. One row per command, in command order: status 0 appended (or replayed
-- by its key), 1 wrong expected version (actual version in out_actual), 2 idempotency key reused with
-- another request. Commands take their stream versions one after another inside the transaction, so
-- two commands on one stream see each other; then all their events go in with one INSERT.
CREATE FUNCTION orderly_append_many(
    p_streams text[], p_expected bigint[], p_counts integer[], p_keys text[], p_requests text[],
    p_event_command integer[], p_ids uuid[], p_types text[], p_schema_versions integer[], p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (out_command integer, out_status integer, out_version bigint, out_position bigint, out_replayed boolean,
               out_actual bigint, out_stream text)
LANGUAGE plpgsql AS $$
DECLARE
    v_commands integer := cardinality(p_streams);
    v_status integer[] := array_fill(0, ARRAY[v_commands]);
    v_version bigint[] := array_fill(0::bigint, ARRAY[v_commands]);
    v_position bigint[] := array_fill(0::bigint, ARRAY[v_commands]);
    v_replayed boolean[] := array_fill(false, ARRAY[v_commands]);
    v_actual bigint[] := array_fill(0::bigint, ARRAY[v_commands]);
    v_stream text[] := p_streams;
    v_base bigint[] := array_fill(NULL::bigint, ARRAY[v_commands]);
    v_hash text[] := array_fill(NULL::text, ARRAY[v_commands]);
    v_store_key boolean[] := array_fill(false, ARRAY[v_commands]);
    v_inserted bigint[];
    v_current bigint;
    v_key idempotency_keys%ROWTYPE;
BEGIN
    PERFORM orderly_lock_streams(p_streams);
    FOR i IN 1..v_commands LOOP
        IF p_keys[i] <> '' THEN
            v_hash[i] := encode(sha256(convert_to(p_requests[i], 'UTF8')), 'hex');
            SELECT * INTO v_key FROM idempotency_keys WHERE key = p_keys[i];
            IF FOUND THEN
                IF v_key.request_hash <> v_hash[i] THEN
                    v_status[i] := 2;
                ELSE
                    v_version[i] := v_key.stream_version;
                    v_position[i] := v_key.position;
                    v_replayed[i] := true;
                    v_stream[i] := v_key.stream_id;
                END IF;
                CONTINUE;
            END IF;
            -- The same key earlier in this batch: this command replays (or is refused by) that one.
            FOR j IN 1..i - 1 LOOP
                IF p_keys[j] = p_keys[i] AND v_base[j] IS NOT NULL THEN
                    IF v_hash[j] <> v_hash[i] THEN
                        v_status[i] := 2;
                    ELSE
                        v_version[i] := v_version[j];
                        v_replayed[i] := true;
                        v_stream[i] := p_streams[j];
                        v_base[i] := -j;
                    END IF;
                    EXIT;
                END IF;
            END LOOP;
            IF v_status[i] = 2 OR v_replayed[i] THEN
                CONTINUE;
            END IF;
        END IF;

        -- The stream's version: after an earlier command of this batch on it, else from the events.
        v_current := NULL;
        FOR j IN REVERSE i - 1..1 LOOP
            IF p_streams[j] = p_streams[i] AND v_base[j] >= 0 THEN
                v_current := v_version[j];
                EXIT;
            END IF;
        END LOOP;
        IF v_current IS NULL THEN
            SELECT coalesce(max(stream_version), 0) INTO v_current FROM events WHERE stream_id = p_streams[i];
        END IF;
        IF p_expected[i] <> -1 AND p_expected[i] <> v_current THEN
            v_status[i] := 1;
            v_actual[i] := v_current;
            CONTINUE;
        END IF;
        v_version[i] := v_current + p_counts[i];
        v_base[i] := v_current;
        v_store_key[i] := p_keys[i] <> '';
    END LOOP;

    WITH inserted AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
        SELECT e.id, p_streams[e.command], v_base[e.command] + row_number() OVER (PARTITION BY e.command ORDER BY e.n),
               e.type, e.schema_version, e.data, e.metadata
        FROM unnest(p_event_command, p_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS e(command, id, type, schema_version, data, metadata, n)
        WHERE v_base[e.command] >= 0
        ORDER BY e.n
        RETURNING stream_id, stream_version, position
    )
    SELECT array_agg(inserted.position ORDER BY c.i) INTO v_inserted
    FROM generate_series(1, v_commands) AS c(i)
    LEFT JOIN inserted ON v_base[c.i] >= 0 AND inserted.stream_id = p_streams[c.i] AND inserted.stream_version = v_version[c.i];

    FOR i IN 1..v_commands LOOP
        IF v_base[i] >= 0 THEN
            v_position[i] := v_inserted[i];
        ELSIF v_base[i] < 0 THEN
            v_position[i] := v_position[-v_base[i]::integer];
        END IF;
        IF v_store_key[i] THEN
            INSERT INTO idempotency_keys (key, request_hash, stream_id, stream_version, position)
            VALUES (p_keys[i], v_hash[i], p_streams[i], v_version[i], v_position[i]);
        END IF;
        RETURN QUERY SELECT i, v_status[i], v_version[i], coalesce(v_position[i], 0), v_replayed[i], v_actual[i], v_stream[i];
    END LOOP;
END
$$;

DROP TABLE streams;
