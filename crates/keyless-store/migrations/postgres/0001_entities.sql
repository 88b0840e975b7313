-- Accounts, OIDC providers, roles with inline policies, and guardrails (Postgres dialect of
-- migrations/sqlite). Keys sort bytewise (COLLATE "C") so both stores list entities in the same
-- order whatever the database's locale. Policy documents are kept verbatim as TEXT.
CREATE TABLE accounts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    ou_path     TEXT NOT NULL,
    from_config BOOLEAN NOT NULL
);

CREATE TABLE providers (
    url         TEXT COLLATE "C" NOT NULL,
    account     TEXT COLLATE "C" NOT NULL,
    client_ids  TEXT NOT NULL,           -- JSON array
    thumbprints TEXT NOT NULL,           -- JSON array
    allow_http  BOOLEAN NOT NULL,
    tags        TEXT NOT NULL,           -- JSON object
    from_config BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,         -- unix seconds
    PRIMARY KEY (account, url)
);

CREATE TABLE roles (
    account              TEXT COLLATE "C" NOT NULL,
    name                 TEXT NOT NULL,
    name_folded          TEXT COLLATE "C" NOT NULL,  -- lower(name): unique ignoring case
    path                 TEXT NOT NULL,
    role_id              TEXT NOT NULL UNIQUE,
    trust_policy         TEXT NOT NULL,
    permissions_boundary TEXT,
    max_session_duration BIGINT NOT NULL,
    description          TEXT NOT NULL,
    tags                 TEXT NOT NULL,  -- JSON object
    from_config          BOOLEAN NOT NULL,
    created_at           BIGINT NOT NULL,
    PRIMARY KEY (account, name_folded)
);

CREATE TABLE role_policies (
    account     TEXT COLLATE "C" NOT NULL,
    role_folded TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account, role_folded, name),
    FOREIGN KEY (account, role_folded) REFERENCES roles (account, name_folded) ON DELETE CASCADE
);

CREATE TABLE guardrails (
    target      TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    document    TEXT NOT NULL,
    from_config BOOLEAN NOT NULL,
    PRIMARY KEY (target, name)
);
