-- The relay waits for appends instead of reading the log every few milliseconds, so an idle system
-- costs next to nothing: every statement that adds events notifies the channel `orderly_events`,
-- delivered when its transaction commits (never for one that rolls back). PostgreSQL folds the
-- identical notifications of one transaction into one, so a group commit of many commands sends one.
CREATE FUNCTION orderly_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orderly_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER orderly_events_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION orderly_notify_appended();
