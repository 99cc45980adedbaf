-- Notifier: one row per notification request and endpoint (a delivery), the
-- attempts made (for operators), endpoints disabled by a 410 Gone, and every
-- outcome event written to the outbox (so one is never queued twice).

CREATE TABLE deliveries (
    notification_id  text        NOT NULL,  -- the request's event id: the webhook-id
    endpoint         text        NOT NULL,
    patient_id       text        NOT NULL,
    alert_id         text        NOT NULL,
    alert            text        NOT NULL,
    audience         text        NOT NULL,
    body             bytea       NOT NULL,  -- sent byte for byte on every attempt
    accepted_at      timestamptz NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('pending', 'delivered', 'failed', 'endpoint_disabled')),
    attempts         int         NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,           -- due time, or the lease's end once claimed
    last_status      text,                  -- HTTP status, or an error class
    finished_at      timestamptz,
    PRIMARY KEY (notification_id, endpoint)
);
CREATE INDEX deliveries_due ON deliveries (endpoint, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_alert ON deliveries (alert_id);

CREATE TABLE delivery_attempts (
    notification_id  text        NOT NULL,
    endpoint         text        NOT NULL,
    number           int         NOT NULL,
    at               timestamptz NOT NULL,
    status           text        NOT NULL,
    retry_after_s    double precision,
    PRIMARY KEY (notification_id, endpoint, number)
);

CREATE TABLE disabled_endpoints (
    name         text        PRIMARY KEY,
    disabled_at  timestamptz NOT NULL
);

CREATE TABLE outcomes (
    id               text        PRIMARY KEY,  -- the outcome event's id
    type             text        NOT NULL,
    notification_id  text        NOT NULL,
    endpoint         text,                     -- null: no endpoint for the audience
    status           text        NOT NULL,
    at               timestamptz NOT NULL
);
CREATE INDEX outcomes_notification ON outcomes (notification_id);
