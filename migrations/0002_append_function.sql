-- Idempotency keys and the append as one server-side function.
--
-- A command may carry an idempotency key. The key row is written in the same transaction as the
-- events, so either both exist or neither; a repeat with the same request returns the first result
-- and appends nothing.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    request_hash text NOT NULL,
    stream_id text NOT NULL,
    stream_version bigint NOT NULL,
    position bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Appends events to one stream atomically, in one round trip.
--   p_expected: NULL = any version, 0 = the stream must not exist, n = the stream must be at version n.
-- Raises SQLSTATE OR001 (detail: the actual version) on a version conflict and OR002 when an
-- idempotency key comes back with a different request.
CREATE FUNCTION orderly_append(
    p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[], p_idempotency_key text, p_request text)
RETURNS TABLE (out_stream text, out_version bigint, out_position bigint, out_replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint := cardinality(p_ids);
    v_new bigint;
    v_actual bigint;
    v_last bigint;
    v_hash text;
    v_key idempotency_keys%ROWTYPE;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        v_hash := encode(sha256(convert_to(p_request, 'UTF8')), 'hex');
        -- A read: it does not give this transaction an id yet.
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

    -- The first write of the transaction claims the stream's row. The row lock orders writers of one
    -- stream, and since a transaction id is assigned at the first write, the holder of a stream's row
    -- always has a lower transaction id than a writer waiting for it: (transaction id, position)
    -- order then keeps every stream in version order for tailing readers.
    IF p_expected IS NULL THEN
        INSERT INTO streams AS s (stream_id, version) VALUES (p_stream, v_count)
        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + EXCLUDED.version
        RETURNING s.version INTO v_new;
    ELSIF p_expected = 0 THEN
        INSERT INTO streams (stream_id, version) VALUES (p_stream, v_count)
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING version INTO v_new;
    ELSE
        UPDATE streams SET version = version + v_count
        WHERE stream_id = p_stream AND version = p_expected
        RETURNING version INTO v_new;
    END IF;
    IF v_new IS NULL THEN
        SELECT version INTO v_actual FROM streams WHERE stream_id = p_stream;
        RAISE EXCEPTION USING ERRCODE = 'OR001', MESSAGE = 'wrong expected version', DETAIL = coalesce(v_actual, 0)::text;
    END IF;

    WITH inserted AS (
        INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, data, metadata)
        SELECT e.id, p_stream, v_new - v_count + e.n, e.type, e.schema_version, e.data, e.metadata
        FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS e(id, type, schema_version, data, metadata, n)
        ORDER BY e.n
        RETURNING position
    )
    SELECT max(position) INTO v_last FROM inserted;

    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (key, request_hash, stream_id, stream_version, position)
        VALUES (p_idempotency_key, v_hash, p_stream, v_new, v_last);
    END IF;
    RETURN QUERY SELECT p_stream, v_new, v_last, false;
END
$$;
