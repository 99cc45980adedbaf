-- Intake: the current request per patient and an append-only decision audit.

CREATE TABLE patients (
    patient_id      text        PRIMARY KEY,
    request_source  text        NOT NULL,
    request_id      text        NOT NULL,
    requested_at    timestamptz NOT NULL,
    request         jsonb       NOT NULL,
    decision        text        NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE decisions (
    id                  bigserial   PRIMARY KEY,
    patient_id          text        NOT NULL,
    request_source      text        NOT NULL,   -- who asked
    request_id          text        NOT NULL,
    decided_at          timestamptz NOT NULL,
    as_of               date        NOT NULL,
    trigger             text        NOT NULL,   -- request | recheck | superseded
    ruleset_version     text        NOT NULL,
    decision            text        NOT NULL,
    reasons             jsonb       NOT NULL,
    earliest_start_date date,
    advisories          jsonb       NOT NULL,
    plan                jsonb,
    event_id            text
);
CREATE INDEX decisions_patient ON decisions (patient_id, id);

CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
