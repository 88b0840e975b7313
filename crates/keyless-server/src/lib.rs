//! The keyless HTTP edge: AWS query protocol for STS and IAM, JSON APIs, health, metrics, JWKS fetching.
