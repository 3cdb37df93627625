-- Group commit, acknowledged only once committed. A statement sent with the extended query protocol
-- (every statement postgres-nio sends) is committed at the Sync after it, and PostgreSQL sends the
-- statement's CommandComplete before that commit; postgres-nio ends the rows at CommandComplete. So
-- the caller of orderly_append_batch had its answers while the commit (and its WAL flush) was still
-- under way: a commit that failed then (a server crash before the flush, a deferred constraint) left
-- appends acknowledged that were never stored.
--
-- This procedure runs orderly_append_batch (0005) and COMMITs inside, before it returns: its one
-- row, each command's outcome in arrays, in command order, reaches the client only after the commit
-- is durable, and a failing commit fails the CALL. A procedure may COMMIT only when CALLed outside a
-- transaction block, as the group commit does; it has no SET clause (a procedure with one may not
-- commit), the function it calls keeps its own.
CREATE PROCEDURE orderly_append_batch_committed(
    p_streams text[], p_expected bigint[], p_counts integer[], p_keys text[], p_requests text[],
    p_event_command integer[], p_event_step integer[], p_ids uuid[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[],
    OUT out_status integer[], OUT out_version bigint[], OUT out_position bigint[], OUT out_replayed boolean[],
    OUT out_actual bigint[], OUT out_stream text[])
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT array_agg(b.out_status ORDER BY b.out_command), array_agg(b.out_version ORDER BY b.out_command),
           array_agg(b.out_position ORDER BY b.out_command), array_agg(b.out_replayed ORDER BY b.out_command),
           array_agg(b.out_actual ORDER BY b.out_command), array_agg(b.out_stream ORDER BY b.out_command)
    INTO out_status, out_version, out_position, out_replayed, out_actual, out_stream
    FROM orderly_append_batch(p_streams, p_expected, p_counts, p_keys, p_requests, p_event_command, p_event_step, p_ids,
                              p_types, p_schema_versions, p_data, p_metadata) AS b;
    COMMIT;
END
$$;
