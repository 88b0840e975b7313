-- Session revocations (see keyless_core::revocation). Rows are deleted once every session they
-- can match has expired (expires_at).
CREATE TABLE revocations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    kind               TEXT NOT NULL,        -- session, role, subject, source-identity, issuer, key-version
    value              TEXT NOT NULL,
    issuer             TEXT,                 -- for kind = subject
    account            TEXT,                 -- NULL: every account (operator CLI)
    issued_before_ms   INTEGER NOT NULL,     -- unix milliseconds
    created_at_ms      INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,     -- unix seconds
    reason             TEXT NOT NULL,
    created_by         TEXT NOT NULL
);
CREATE INDEX revocations_expiry ON revocations (expires_at);
