-- Appends wake the relay: every statement that inserts events sends a notification on
-- `orderly_events_appended`, delivered at commit (PostgreSQL folds repeats within a transaction, and
-- a rolled-back append sends none). The relay waits for it instead of polling the log every 20 ms,
-- which cost an idle system a fifth of a core; it still looks once a second without one (a listener
-- reconnecting can miss some).
CREATE FUNCTION orderly_notify_appended() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('orderly_events_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION orderly_notify_appended();
