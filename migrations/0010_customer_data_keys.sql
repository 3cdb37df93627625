-- Each customer's data key, apart from the log: personal fields of their orders are sealed with it
-- before the append (AES-GCM), so deleting the key erases them from the log, the topic, the read
-- models' sources and every export at once. One key in use per customer; a customer forgotten and
-- then ordering again gets a new one (the old orders stay erased).
CREATE TABLE customer_data_keys (
    key_id uuid PRIMARY KEY,
    customer_id text NOT NULL UNIQUE,
    material bytea NOT NULL CHECK (length(material) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- That a customer's personal data was erased, when and by whom (the key itself is deleted).
CREATE TABLE customer_erasures (
    customer_id text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    erased_by text NOT NULL,
    keys_deleted integer NOT NULL
);
