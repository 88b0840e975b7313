//! JWS/JWT verification against a JWKS it is given, with allow-listed algorithms and injected time.
