-- When each role (by unique id, so a recreated role starts afresh) last had a session issued,
-- for IAM's RoleLastUsed. Written in batches by every server, keeping the latest; not part of
-- the directory, so a write moves no generation counter.
CREATE TABLE role_last_used (
    role_id TEXT PRIMARY KEY,
    used_at_ms BIGINT NOT NULL
);
