-- Alerts: one state document per patient and an append-only audit of every
-- alert transition and notification requested.

CREATE TABLE patient_state (
    patient_id  text        PRIMARY KEY,
    state       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE alert_audit (
    id          bigserial   PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    patient_id  text        NOT NULL,
    type        text        NOT NULL,
    alert_id    text        NOT NULL,
    alert       text        NOT NULL,
    severity    text        NOT NULL,
    detail      text        NOT NULL,   -- reason, or the audience of a notification
    at          timestamptz NOT NULL
);
CREATE INDEX alert_audit_patient ON alert_audit (patient_id, id);

CREATE TRIGGER alert_audit_append_only BEFORE UPDATE OR DELETE ON alert_audit
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
