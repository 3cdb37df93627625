-- The append notice (0008) only while a reader rests on it. A transaction that notifies takes
-- PostgreSQL's notify lock at its commit and holds it through the WAL flush, so every notifying
-- append waited for the commit of the one before it: at 100 orders/s most appends waiting in
-- `pg_stat_activity` waited on that lock (`Lock`/`object`). A busy relay reads the log every few
-- milliseconds anyway and needs no notice; a resting one records itself here first (then reads the
-- log once more, so an append that did not see its row is found by that read) and removes itself
-- when events come again. A resting relay renews its row every 10 minutes; a row older than 30 is
-- one a relay left when it died, and no longer asks for notices.
CREATE TABLE orderly_append_listeners (
    listener text PRIMARY KEY,
    resting_since timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION orderly_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM orderly_append_listeners WHERE resting_since > now() - interval '30 minutes') THEN
        PERFORM pg_notify('orderly_events', '');
    END IF;
    RETURN NULL;
END
$$;
