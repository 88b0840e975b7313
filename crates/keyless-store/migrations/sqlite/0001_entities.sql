-- Accounts, OIDC providers, roles with inline policies, and guardrails.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    ou_path     TEXT NOT NULL,
    from_config INTEGER NOT NULL
);

CREATE TABLE providers (
    url         TEXT NOT NULL,
    account     TEXT NOT NULL,
    client_ids  TEXT NOT NULL,           -- JSON array
    thumbprints TEXT NOT NULL,           -- JSON array
    allow_http  INTEGER NOT NULL,
    tags        TEXT NOT NULL,           -- JSON object
    from_config INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,        -- unix seconds
    PRIMARY KEY (account, url)
);

CREATE TABLE roles (
    account              TEXT NOT NULL,
    name                 TEXT NOT NULL,
    name_folded          TEXT NOT NULL,  -- lower(name): role names are unique ignoring case
    path                 TEXT NOT NULL,
    role_id              TEXT NOT NULL UNIQUE,
    trust_policy         TEXT NOT NULL,
    permissions_boundary TEXT,
    max_session_duration INTEGER NOT NULL,
    description          TEXT NOT NULL,
    tags                 TEXT NOT NULL,  -- JSON object
    from_config          INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (account, name_folded)
);

CREATE TABLE role_policies (
    account     TEXT NOT NULL,
    role_folded TEXT NOT NULL,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    PRIMARY KEY (account, role_folded, name),
    FOREIGN KEY (account, role_folded) REFERENCES roles (account, name_folded) ON DELETE CASCADE
);

CREATE TABLE guardrails (
    target      TEXT NOT NULL,
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    from_config INTEGER NOT NULL,
    PRIMARY KEY (target, name)
);
