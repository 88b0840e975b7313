-- The role ARNs of each role's trust policy bound to the unique ids of the roles they named
-- when the policy was saved (JSON object, ARN as written -> AROA id), as IAM binds them, so a
-- role recreated under a trusted name is not trusted. Existing rows get '{}': their principals
-- match by ARN as before until the policy is saved again (config roles: at the next start).
ALTER TABLE roles ADD COLUMN trust_principal_ids TEXT NOT NULL DEFAULT '{}';
