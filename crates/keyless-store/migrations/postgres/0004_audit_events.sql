-- The audit table sink: a queryable copy of every audit event of the JSON-lines log (the files
-- stay the durable, verifiable source). One row per event; digests are not copied. `log_id`
-- names the log (one per data dir) so replicas sharing a database keep their chains apart.
CREATE TABLE audit_events (
    log_id               TEXT NOT NULL,
    seq                  BIGINT NOT NULL,       -- the record's place in its hash chain
    hash                 TEXT NOT NULL,         -- its chain hash (hex)
    event_time           TIMESTAMPTZ NOT NULL,
    event_source         TEXT NOT NULL,
    event_name           TEXT NOT NULL,
    principal            TEXT,
    role_arn             TEXT,
    subject              TEXT,
    repository           TEXT,
    access_key_id        TEXT,                  -- the caller's
    issued_access_key_id TEXT,                  -- the one the call issued
    error_code           TEXT,
    decision             TEXT NOT NULL,         -- allow, deny, error
    record               JSONB NOT NULL,        -- the whole record, chain fields included
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (event_time);
CREATE INDEX audit_events_principal ON audit_events (principal, event_time);
CREATE INDEX audit_events_role ON audit_events (role_arn, event_time);
CREATE INDEX audit_events_subject ON audit_events (subject, event_time);
CREATE INDEX audit_events_access_key ON audit_events (access_key_id) WHERE access_key_id IS NOT NULL;
CREATE INDEX audit_events_issued_key ON audit_events (issued_access_key_id) WHERE issued_access_key_id IS NOT NULL;
