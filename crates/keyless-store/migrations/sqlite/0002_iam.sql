-- IAM API: managed policies with versions, role attachments, permissions boundaries by ARN.
ALTER TABLE roles ADD COLUMN permissions_boundary_arn TEXT;

CREATE TABLE managed_policies (
    account         TEXT NOT NULL,
    name            TEXT NOT NULL,
    name_folded     TEXT NOT NULL,        -- lower(name): policy names are unique ignoring case
    path            TEXT NOT NULL,
    policy_id       TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    default_version TEXT NOT NULL,
    next_version    INTEGER NOT NULL,
    tags            TEXT NOT NULL,        -- JSON object
    from_config     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (account, name_folded)
);

CREATE TABLE policy_versions (
    account       TEXT NOT NULL,
    policy_folded TEXT NOT NULL,
    version_id    TEXT NOT NULL,
    position      INTEGER NOT NULL,       -- creation order
    document      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account, policy_folded, version_id),
    FOREIGN KEY (account, policy_folded) REFERENCES managed_policies (account, name_folded) ON DELETE CASCADE
);

CREATE TABLE role_attachments (
    account     TEXT NOT NULL,
    role_folded TEXT NOT NULL,
    position    INTEGER NOT NULL,         -- attachment order
    policy_arn  TEXT NOT NULL,
    PRIMARY KEY (account, role_folded, policy_arn),
    FOREIGN KEY (account, role_folded) REFERENCES roles (account, name_folded) ON DELETE CASCADE
);
