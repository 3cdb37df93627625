-- What `orderly dlq redrive` put back: which dead letter (its place in the dead-letter topic), for
-- which group, when and by whom, how many times. `dlq list` shows it, and a second redrive of the
-- same letter needs `--again`.
CREATE TABLE dead_letter_redrives (
    dead_letter_topic text NOT NULL,
    dead_letter_partition integer NOT NULL,
    dead_letter_offset bigint NOT NULL,
    consumer_group text NOT NULL,
    event_id text,
    target_topic text NOT NULL,
    redriven_at timestamptz NOT NULL DEFAULT now(),
    redriven_by text NOT NULL,
    times integer NOT NULL DEFAULT 1,
    PRIMARY KEY (dead_letter_topic, dead_letter_partition, dead_letter_offset)
);
