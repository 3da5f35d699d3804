// A real OpenID Connect provider for the tests: the npm package `oidc-provider`, on loopback.
// Environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (comma list),
// OIDC_ACCOUNTS_FILE (JSON: login name → {email, email_verified?, name?, groups?}), read at each
// log-in so that a test can change someone's groups. Prints "OIDC_READY <issuer>" when listening.
// Each start signs with a new RSA key (a new `kid`): starting it again on the same port is a key
// rotation as the app sees it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const env = process.env;
const accounts = () => JSON.parse(fs.readFileSync(env.OIDC_ACCOUNTS_FILE, 'utf8'));
const server = http.createServer();
await new Promise((resolve) => server.listen(Number(env.OIDC_PORT || 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const provider = new Provider(issuer, {
  jwks: { keys: [{ ...signingKey, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' }] },
  clients: [{
    client_id: env.OIDC_CLIENT_ID,
    client_secret: env.OIDC_CLIENT_SECRET,
    redirect_uris: env.OIDC_REDIRECT_URIS.split(/[ ,]+/).filter(Boolean),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // email and groups in the ID token itself, not only from /userinfo.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  cookies: { keys: ['railyard-tests-only-cookie-key'] },
  ttl: { IdToken: 300, AccessToken: 300, Interaction: 600, Session: 3600, Grant: 3600 },
  async findAccount(_ctx, id) {
    // An unknown login name signs in with an unverified e-mail (the provider would 500 otherwise).
    const a = accounts()[id] ?? { email: `${id}@unknown.invalid`, email_verified: false, groups: [] };
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: a.email, email_verified: a.email_verified ?? true, name: a.name ?? id, preferred_username: id, groups: a.groups ?? [] };
      },
    };
  },
});
server.on('request', provider.callback());
console.log(`OIDC_READY ${issuer}`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
