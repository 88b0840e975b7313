//! Fetches and caches OIDC discovery documents and JWKS for configured issuers.
