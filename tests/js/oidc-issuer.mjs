// A real OIDC issuer for the keyless end-to-end tests, built on oauth2-mock-server 8.2.3.
//
// Usage: node tests/js/oidc-issuer.mjs [PORT]      (PORT 0 or absent: pick a free port)
// Prints exactly one line on stdout when ready: `oidc issuer listening on http://127.0.0.1:PORT`.
// The issuer URL (the tokens' `iss`) is `http://127.0.0.1:PORT`.
//
// Endpoints (all on 127.0.0.1):
//   GET  /.well-known/openid-configuration, GET /jwks      oauth2-mock-server's discovery and JWKS
//   POST /token  (form, grant_type=client_credentials)     a token whose claims are copied from the
//        form fields, so tests can mint GitHub-Actions-shaped tokens:
//          sub, aud, repository, ref, job_workflow_ref, run_id, actor, ... -> string claims
//          exp, nbf, iat                                    -> integer claims (absolute epoch seconds)
//          exp_in=N                                         -> exp = now + N (may be negative)
//          aud may be a JSON array ("[\"a\",\"b\"]")
//          https://aws.amazon.com/tags and claims_json      -> parsed JSON (claims_json is merged)
//          omit=iat,sub                                     -> remove these claims
//          iss                                              -> override the issuer claim
//   POST /admin/rotate        generate a new RS256 key; it is published and used from now on and
//                             every previous key is removed from the JWKS. Answers {"kid": "..."}.
//   POST /admin/token-unknown-kid (same form as /token)   a token signed by a key that is never
//                             published (its kid is not in the JWKS).
//   POST /admin/token-hs256-pubkey (same form)            a token with alg HS256 whose HMAC key is
//                             the PEM of the published RSA public key (the key-confusion attack),
//                             carrying the published kid.
//   POST /admin/token-alg-none (same form)                an unsigned token with alg "none".
//   GET  /admin/stats         {"jwks_requests": N, "discovery_requests": M, "kids": [...]}
//
// Only RS256 keys are generated (the algorithm is pinned: oauth2-mock-server would otherwise sign
// with whichever key is next in its round-robin).

import { createServer } from 'node:http';
import { createHmac, createPublicKey } from 'node:crypto';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const ALG = 'RS256';
const INT_CLAIMS = new Set(['exp', 'nbf', 'iat']);
const JSON_CLAIMS = new Set(['https://aws.amazon.com/tags']);
const CONTROL_FIELDS = new Set(['grant_type', 'scope', 'omit', 'claims_json', 'exp_in', 'client_id']);
const MAX_BODY = 64 * 1024;

const portArg = process.argv[2] ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`oidc-issuer: invalid port ${JSON.stringify(portArg)}`);
  process.exit(2);
}

let issuerUrl = '';
let current; // { issuer, service }
const stats = { jwks_requests: 0, discovery_requests: 0, tokens: 0 };

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** Applies the form fields of a token request to a JWT payload (see the header comment). */
function applyFields(payload, form) {
  const now = Math.floor(Date.now() / 1000);
  for (const [name, value] of Object.entries(form)) {
    if (CONTROL_FIELDS.has(name)) continue;
    if (INT_CLAIMS.has(name)) {
      const n = Number.parseInt(value, 10);
      if (!Number.isInteger(n)) throw new Error(`claim ${name} must be an integer, got ${value}`);
      payload[name] = n;
    } else if (JSON_CLAIMS.has(name) || (name === 'aud' && value.startsWith('['))) {
      payload[name] = JSON.parse(value);
    } else {
      payload[name] = value;
    }
  }
  if (form.exp_in !== undefined) {
    const n = Number.parseInt(form.exp_in, 10);
    if (!Number.isInteger(n)) throw new Error(`exp_in must be an integer, got ${form.exp_in}`);
    payload.exp = now + n;
  }
  if (form.claims_json !== undefined) Object.assign(payload, JSON.parse(form.claims_json));
  if (payload.scope === undefined) delete payload.scope;
  if (form.omit !== undefined) {
    for (const name of form.omit.split(',')) delete payload[name.trim()];
  }
}

/** Creates an issuer + service pair with one fresh RS256 key. */
async function makeIssuer() {
  const issuer = new OAuth2Issuer();
  issuer.url = issuerUrl;
  await issuer.keys.generate(ALG);
  const service = new OAuth2Service(issuer);
  service.on('beforeTokenSigning', (token, req) => {
    stats.tokens += 1;
    applyFields(token.payload, req.body ?? {});
  });
  return { issuer, service };
}

// A separate issuer whose key is never published: tokens with an unknown kid.
let unpublished;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

/** A token from `issuer` whose claims come from `form`. */
async function buildFrom(issuer, form) {
  return issuer.buildToken({
    scopesOrTransform: (_header, payload) => applyFields(payload, form),
  });
}

function publishedKid() {
  return current.issuer.keys.toJSON()[0].kid;
}

function publishedPublicPem() {
  const jwk = current.issuer.keys.toJSON()[0];
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
}

async function forgedToken(kind, form) {
  // Claims as a genuine token would have them (same builder, then re-signed or unsigned).
  const genuine = await buildFrom(current.issuer, form);
  const payloadPart = genuine.split('.')[1];
  if (kind === 'none') {
    const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid: publishedKid() }));
    return `${header}.${payloadPart}.`;
  }
  if (kind === 'hs256-pubkey') {
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: publishedKid() }));
    const input = `${header}.${payloadPart}`;
    const sig = createHmac('sha256', publishedPublicPem()).update(input).digest();
    return `${input}.${b64url(sig)}`;
  }
  throw new Error(`unknown forgery ${kind}`);
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

async function handleAdmin(req, res, path) {
  if (path === '/admin/stats' && req.method === 'GET') {
    const kids = current.issuer.keys.toJSON().map((k) => k.kid);
    return sendJson(res, 200, { ...stats, kids });
  }
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'method not allowed' });
  if (path === '/admin/rotate') {
    current = await makeIssuer();
    return sendJson(res, 200, { kid: publishedKid() });
  }
  const form = await readForm(req);
  let token;
  if (path === '/admin/token-unknown-kid') token = await buildFrom(unpublished.issuer, form);
  else if (path === '/admin/token-hs256-pubkey') token = await forgedToken('hs256-pubkey', form);
  else if (path === '/admin/token-alg-none') token = await forgedToken('none', form);
  else return sendJson(res, 404, { error: 'not found' });
  return sendJson(res, 200, { access_token: token, token_type: 'Bearer' });
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path.startsWith('/admin/')) {
    handleAdmin(req, res, path).catch((err) => sendJson(res, 400, { error: String(err.message ?? err) }));
    return;
  }
  if (path === '/jwks') stats.jwks_requests += 1;
  if (path === '/.well-known/openid-configuration') stats.discovery_requests += 1;
  current.service.requestHandler(req, res);
});

server.listen(port, '127.0.0.1', async () => {
  const addr = server.address();
  issuerUrl = `http://127.0.0.1:${addr.port}`;
  current = await makeIssuer();
  unpublished = await makeIssuer();
  process.stdout.write(`oidc issuer listening on ${issuerUrl}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
