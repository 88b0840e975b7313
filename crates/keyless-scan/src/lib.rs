//! Finds long-lived AWS keys and risky CI/IAM setups in files, git history and workflows; migrates workflows to OIDC.
