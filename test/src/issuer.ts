/**
 * A token issuer on loopback for tests and benchmarks: an RS256 key pair whose public half is served as a JWKS at
 * `/jwks.json` on a free port, the way a real authorization server publishes it to Skein's bearer middleware.
 */
import { createServer, type Server } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';

const KID = 'k1';

export class TestIssuer {
  /** The `iss` of its tokens, `http://127.0.0.1:<port>`. */
  readonly url: string;
  private readonly server: Server;
  private readonly privateKey: CryptoKey;

  private constructor(url: string, server: Server, privateKey: CryptoKey) {
    this.url = url;
    this.server = server;
    this.privateKey = privateKey;
  }

  /** Generates a key pair and serves its public half at `/jwks.json` on a free port. */
  static async start(): Promise<TestIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
    const body = JSON.stringify({ keys: [jwk] });
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/jwks.json' ? 200 : 404, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return new TestIssuer(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, server, privateKey);
  }

  get jwksUrl(): string {
    return `${this.url}/jwks.json`;
  }

  /** A token with `claims` for `audience`, expiring after `expiresIn` (a jose time span; negative for the past). */
  sign(claims: JWTPayload, options: { audience: string; expiresIn?: string }): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: KID })
      .setIssuer(this.url)
      .setAudience(options.audience)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(this.privateKey);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
