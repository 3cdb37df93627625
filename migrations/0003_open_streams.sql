-- The order service finds sagas that passed their deadline: orders placed in a time window that have
-- no terminal event yet (EventStore.openStreams). This index keeps that a range scan by type and time.
CREATE INDEX events_by_type_and_time ON events (event_type, recorded_at);
