CREATE TABLE received (
    patient_id text NOT NULL,
    event_id   text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
