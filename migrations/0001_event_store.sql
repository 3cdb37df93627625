-- The event log: the single source of truth.
--
-- Every row also stores the id of the transaction that wrote it (xid8). Readers that tail the log
-- take only rows whose transaction is older than the oldest transaction still running, ordered by
-- (transaction_id, position), so a slow writer that commits a low position late is never skipped.

CREATE TABLE streams (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL CHECK (version >= 1)
);

CREATE TABLE events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id uuid NOT NULL UNIQUE,
    stream_id text NOT NULL,
    stream_version bigint NOT NULL CHECK (stream_version >= 1),
    event_type text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- Backstop for optimistic concurrency: the append also checks the version explicitly.
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_transaction ON events (transaction_id, position);

-- Where each tailing reader (relay, replays) has got to in the log.
CREATE TABLE checkpoints (
    name text PRIMARY KEY,
    transaction_id xid8 NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
