-- Snapshots: a folded aggregate state saved at a stream version, so that loading a long stream (a
-- busy SKU's stock) reads only the events after it. A cache of the log, never the truth: deleting
-- every row is safe (loads fold from the start again). `schema` names the aggregate and the version
-- of its fold; a snapshot of another schema is ignored, so changed code never reads an old state.
CREATE TABLE snapshots (
    stream_id text PRIMARY KEY,
    schema text NOT NULL,
    stream_version bigint NOT NULL,
    state jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
