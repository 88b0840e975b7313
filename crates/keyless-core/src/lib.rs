//! keyless use cases (STS, authorize, IAM admin, revocation) over ports for store, JWKS, audit and clock.
