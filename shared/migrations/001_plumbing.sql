-- Reliable-messaging tables every service owns in its own schema (DESIGN.md §5).

-- Outbox: rows written in the same transaction as the state change; the relay
-- publishes them in id order (acks=all) and stamps sent_at.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         text,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Inbox: source+id of every message handled, written with its effects.
-- digest catches an id reused with a different body.
CREATE TABLE inbox (
    source      text        NOT NULL,
    id          text        NOT NULL,
    digest      text        NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- Durable timers: one per (patient, key); setting an existing key replaces it.
CREATE TABLE timers (
    patient_id  text        NOT NULL,
    key         text        NOT NULL,
    kind        text        NOT NULL,
    due_at      timestamptz NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (patient_id, key)
);
CREATE INDEX timers_due ON timers (due_at);

-- Dead letters kept for operators (`ntx dlq list|replay`), also sent to ntx.dlq.v1.
CREATE TABLE dead_letters (
    id           uuid        PRIMARY KEY,
    topic        text        NOT NULL,
    partition    int,
    "offset"     bigint,
    key          text,
    reason       text        NOT NULL,
    field        text,
    original     bytea       NOT NULL,
    received_at  timestamptz NOT NULL,
    replayed_at  timestamptz
);

-- Audit tables are append-only: any UPDATE or DELETE raises.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
