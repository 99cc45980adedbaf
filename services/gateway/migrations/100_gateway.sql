-- Gateway: the identity map (Patient.identifier -> pseudonymous patient_id), lone
-- liver results waiting for their partner, and every event id already written to
-- the outbox (so a resource sent again is not a second event). Identifiers are
-- kept only here, readable only by the gateway's role.

CREATE TABLE patient_identifiers (
    system      text        NOT NULL,
    value       text        NOT NULL,
    patient_id  text        NOT NULL,
    linked_at   timestamptz NOT NULL,
    PRIMARY KEY (system, value)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_id);

CREATE TABLE held_results (
    patient_id    text        NOT NULL,
    analyte       text        NOT NULL CHECK (analyte IN ('alt', 'ast')),
    collected_at  timestamptz NOT NULL,
    value         numeric     NOT NULL,
    uln           numeric     NOT NULL,
    key           text        NOT NULL,  -- the resource's idempotency key
    resource      text        NOT NULL,  -- which resource (type/id), to tell a correction
    path          text        NOT NULL,  -- its FHIR path, for the report when it expires
    held_at       timestamptz NOT NULL,
    PRIMARY KEY (patient_id, collected_at, analyte)
);
CREATE INDEX held_results_age ON held_results (held_at);

-- Results already sent in a lab.resulted: the same resource sent again alone is
-- not held (it would be reported as lone after the wait).
CREATE TABLE resulted_parts (
    patient_id    text        NOT NULL,
    collected_at  timestamptz NOT NULL,
    analyte       text        NOT NULL CHECK (analyte IN ('alt', 'ast')),
    key           text        NOT NULL,
    PRIMARY KEY (patient_id, collected_at, analyte, key)
);

CREATE TABLE sent_events (
    event_id  text        PRIMARY KEY,  -- stable: derived from the causing resources
    type      text        NOT NULL,
    sent_at   timestamptz NOT NULL
);
