// node:test checks of the OIDC test issuer (tests/js/oidc-issuer.mjs) itself, so that a failing
// keyless e2e test can be trusted to be keyless's fault and not the issuer's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey, createVerify, createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
let proc;
let url;

before(async () => {
  proc = spawn(process.execPath, [join(here, 'oidc-issuer.mjs'), '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  url = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`issuer did not start: ${buf}`)), 15000);
    proc.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/oidc issuer listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`issuer exited ${code}`)));
  });
});

after(() => proc?.kill('SIGTERM'));

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

async function post(path, fields) {
  const res = await fetch(url + path, { method: 'POST', body: new URLSearchParams(fields) });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

async function jwks() {
  return (await (await fetch(`${url}/jwks`)).json()).keys;
}

function verifyRs256(token, jwk) {
  const [h, p, s] = token.split('.');
  const v = createVerify('RSA-SHA256');
  v.update(`${h}.${p}`);
  return v.verify(createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
}

test('discovery names the 127.0.0.1 issuer and its JWKS', async () => {
  const d = await (await fetch(`${url}/.well-known/openid-configuration`)).json();
  assert.equal(d.issuer, url);
  assert.equal(d.jwks_uri, `${url}/jwks`);
  const keys = await jwks();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].alg, 'RS256');
  assert.equal(keys[0].kty, 'RSA');
  assert.equal(keys[0].d, undefined, 'private key material must not be published');
});

test('token endpoint copies form fields into GitHub-Actions-shaped claims', async () => {
  const now = Math.floor(Date.now() / 1000);
  const tags = { principal_tags: { team: ['blue'] }, transitive_tag_keys: ['team'] };
  const { access_token: tok } = await post('/token', {
    grant_type: 'client_credentials',
    sub: 'repo:octo-org/demo:ref:refs/heads/main',
    aud: 'sts.amazonaws.com',
    repository: 'octo-org/demo',
    run_id: '42',
    nbf: String(now - 5),
    exp: String(now + 100),
    'https://aws.amazon.com/tags': JSON.stringify(tags),
  });
  const [h, p] = tok.split('.');
  const header = decode(h);
  const claims = decode(p);
  assert.equal(header.alg, 'RS256');
  assert.equal(claims.iss, url);
  assert.equal(claims.sub, 'repo:octo-org/demo:ref:refs/heads/main');
  assert.equal(claims.aud, 'sts.amazonaws.com');
  assert.equal(claims.repository, 'octo-org/demo');
  assert.equal(claims.run_id, '42');
  assert.equal(claims.exp, now + 100);
  assert.equal(claims.nbf, now - 5);
  assert.deepEqual(claims['https://aws.amazon.com/tags'], tags);
  assert.equal(claims.scope, undefined);
  const key = (await jwks()).find((k) => k.kid === header.kid);
  assert.ok(key, 'signing kid is published');
  assert.ok(verifyRs256(tok, key));
});

test('omit, exp_in, iss override and JSON aud', async () => {
  const now = Math.floor(Date.now() / 1000);
  const { access_token: tok } = await post('/token', {
    grant_type: 'client_credentials', sub: 's', aud: '["a","b"]', omit: 'iat,nbf', exp_in: '-600', iss: 'https://x.example',
  });
  const c = decode(tok.split('.')[1]);
  assert.deepEqual(c.aud, ['a', 'b']);
  assert.equal(c.iat, undefined);
  assert.equal(c.nbf, undefined);
  assert.equal(c.iss, 'https://x.example');
  assert.ok(Math.abs(c.exp - (now - 600)) <= 2);
});

test('forged tokens: unknown kid, HS256 with the public key, alg none', async () => {
  const keys = await jwks();
  const published = keys.map((k) => k.kid);
  const unknown = (await post('/admin/token-unknown-kid', { sub: 's' })).access_token;
  const uh = decode(unknown.split('.')[0]);
  assert.equal(uh.alg, 'RS256');
  assert.ok(!published.includes(uh.kid), 'unknown kid must not be published');

  const hs = (await post('/admin/token-hs256-pubkey', { sub: 's' })).access_token;
  const [hh, hp, hsig] = hs.split('.');
  assert.equal(decode(hh).alg, 'HS256');
  assert.equal(decode(hh).kid, published[0]);
  const pem = createPublicKey({ key: keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  assert.equal(createHmac('sha256', pem).update(`${hh}.${hp}`).digest('base64url'), hsig);

  const none = (await post('/admin/token-alg-none', { sub: 's' })).access_token;
  const parts = none.split('.');
  assert.equal(parts.length, 3);
  assert.equal(decode(parts[0]).alg, 'none');
  assert.equal(parts[2], '');
  assert.equal(decode(parts[1]).sub, 's');
});

test('rotation publishes and uses a new key and removes the old one', async () => {
  const oldKid = (await jwks())[0].kid;
  const { kid } = await post('/admin/rotate', {});
  assert.notEqual(kid, oldKid);
  const keys = await jwks();
  assert.deepEqual(keys.map((k) => k.kid), [kid]);
  const { access_token: tok } = await post('/token', { grant_type: 'client_credentials', sub: 's' });
  assert.equal(decode(tok.split('.')[0]).kid, kid);
  assert.ok(verifyRs256(tok, keys[0]));
  const stats = await (await fetch(`${url}/admin/stats`)).json();
  assert.ok(stats.jwks_requests >= 1);
  assert.deepEqual(stats.kids, [kid]);
});

test('bad input to the token endpoint is an error, not a token', async () => {
  const res = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', exp: 'soon' }) });
  assert.ok(res.status >= 400, `status ${res.status}`);
});
