-- Scheduler: one plan state per patient, and due items materialised on a rolling
-- horizon (not a year per patient): each row is emitted exactly once.

CREATE TABLE plans (
    patient_id     text        PRIMARY KEY,
    state          jsonb       NOT NULL,
    active         boolean     NOT NULL DEFAULT true,
    horizon_until  timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX plans_horizon ON plans (horizon_until) WHERE active;

CREATE TABLE due_items (
    patient_id  text        NOT NULL,
    key         text        NOT NULL,
    type        text        NOT NULL,
    due_at      timestamptz NOT NULL,
    data        jsonb       NOT NULL,
    emitted_at  timestamptz,
    late        boolean,
    PRIMARY KEY (patient_id, key)
);
CREATE INDEX due_items_pending ON due_items (due_at) WHERE emitted_at IS NULL;
