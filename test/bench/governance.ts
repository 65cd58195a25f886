/**
 * The governance benchmark sidecars run with, written as a user would write it: a Configuration (App-ID access
 * control, the bearer middleware in the app pipeline, tracing), the bearer Component, and the sample
 * MCPToolPolicy. Bearer tokens come from a local issuer: an RS256 key pair whose JWKS is served on loopback.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestIssuer } from '../src/issuer.js';

/** The sample policy of the access-control examples, as the end-to-end tests load it. */
const INVENTORY_POLICY = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));
/** The App IDs the sample policy names: its scope and the caller its first per-caller rule allows. */
const SAMPLE_CALLEE = 'mcp-server';
const SAMPLE_CALLER = 'analyst-agent';

/** The audience every benchmark token carries and every bearer Component requires. */
export const AUDIENCE = 'inventory-api';

/** The benchmark's issuer: tokens for the sample policy's audience and read scope, valid long enough to outlive any run. */
export class LocalIssuer {
  private constructor(private readonly issuer: TestIssuer) {}

  static async start(): Promise<LocalIssuer> {
    return new LocalIssuer(await TestIssuer.start());
  }

  /** The `iss` of its tokens. */
  get url(): string {
    return this.issuer.url;
  }

  get jwksUrl(): string {
    return this.issuer.jwksUrl;
  }

  /** A token for `subject`. */
  token(subject: string): Promise<string> {
    return this.issuer.sign({ sub: subject, scope: 'inventory:read' }, { audience: AUDIENCE, expiresIn: '2h' });
  }

  close(): Promise<void> {
    return this.issuer.close();
  }
}

/** What a benchmark sidecar is configured with; every part is optional. */
export interface SidecarGovernance {
  /** Tracing with this sampling rate, exported over OTLP/HTTP to `host:port`. */
  tracing?: { samplingRate: number; otlpEndpoint: string };
  /** App-ID access control: deny by default, these callers (namespace `default`) allowed. */
  allowCallers?: readonly string[];
  /** A `middleware.http.bearer` handler validating tokens of this issuer. */
  bearer?: LocalIssuer;
  /** The sample MCPToolPolicy, scoped to `callee`, with its analyst rule granted to `caller`. */
  toolPolicy?: { callee: string; caller: string };
}

/**
 * The sample policy for other App IDs. Only the scope and the one caller are renamed, so the rules, their order and
 * the work of evaluating them stay those of the sample; a sample that no longer has those lines is an error here
 * rather than a policy that silently denies everything.
 */
function samplePolicyFor(callee: string, caller: string): string {
  const sample = readFileSync(INVENTORY_POLICY, 'utf8');
  const scope = `scopes:\n  - ${SAMPLE_CALLEE}\n`;
  const callers = `appIds: [${SAMPLE_CALLER}]`;
  if (!sample.includes(scope) || !sample.includes(callers)) throw new Error(`${INVENTORY_POLICY} no longer has the scope and caller lines the benchmark renames`);
  return sample.replace(scope, `scopes:\n  - ${callee}\n`).replace(callers, `appIds: [${caller}]`);
}

/**
 * Writes a Configuration and the resources it needs into `dir`, a folder for this sidecar alone (as in the
 * end-to-end tests, the Configuration sits beside the resources), and returns the `skein run` arguments that load
 * them. An empty governance writes nothing and returns no arguments.
 */
export function writeGovernance(dir: string, name: string, governance: SidecarGovernance): string[] {
  const { tracing, allowCallers, bearer, toolPolicy } = governance;
  if (!tracing && !allowCallers && !bearer && !toolPolicy) return [];
  const spec: string[] = [];
  if (tracing) {
    spec.push('  tracing:', `    samplingRate: "${tracing.samplingRate}"`, '    otel:', `      endpointAddress: "${tracing.otlpEndpoint}"`, '      isSecure: false', '      protocol: http');
  }
  if (allowCallers) {
    spec.push('  accessControl:', '    defaultAction: deny', '    trustDomain: public', '    policies:');
    for (const caller of allowCallers) spec.push(`    - { appId: ${caller}, namespace: default, defaultAction: allow }`);
  }
  if (bearer) {
    spec.push('  appHttpPipeline:', '    handlers:', '    - name: bearer', '      type: middleware.http.bearer');
    const component = ['apiVersion: dapr.io/v1alpha1', 'kind: Component', 'metadata:', '  name: bearer', 'spec:', '  type: middleware.http.bearer', '  version: v1', '  metadata:'];
    component.push('  - name: issuer', `    value: "${bearer.url}"`, '  - name: audience', `    value: ${AUDIENCE}`, '  - name: jwksURL', `    value: "${bearer.jwksUrl}"`);
    writeFileSync(join(dir, 'bearer.yaml'), `${component.join('\n')}\n`);
  }
  if (toolPolicy) writeFileSync(join(dir, 'tool-policy.yaml'), samplePolicyFor(toolPolicy.callee, toolPolicy.caller));
  const configuration = ['apiVersion: dapr.io/v1alpha1', 'kind: Configuration', 'metadata:', `  name: ${name}`, 'spec:', ...spec];
  const configFile = join(dir, 'configuration.yaml');
  writeFileSync(configFile, `${configuration.join('\n')}\n`);
  return ['--config', configFile, ...(bearer || toolPolicy ? ['--resources-path', dir] : [])];
}
