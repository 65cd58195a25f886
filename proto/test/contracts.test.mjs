// Contract checks: generated codecs round-trip, gRPC paths match the .proto files, and every resource schema
// is complete enough for editors (a description on every property) and refuses unknown fields.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { skein, sentryService, invocationService, actorService, RESOURCE_KINDS, loadSchema } from '../dist/index.js';

const protoText = (path) => readFileSync(fileURLToPath(new URL(`../${path}`, import.meta.url)), 'utf8');

describe('generated codecs', function () {
  it('round-trip an invocation request with a binary body', function () {
    const message = {
      head: { appId: 'orders', namespace: 'shop', verb: 'POST', method: 'a%20b/c', query: 'x=1', headers: [{ name: 'x-a', value: '1' }] },
      body: Buffer.from([0, 1, 2, 255]),
    };
    const decoded = skein.internal.v1.InvokeRequest.decode(skein.internal.v1.InvokeRequest.encode(message).finish());
    assert.equal(decoded.head.appId, 'orders');
    assert.equal(decoded.head.method, 'a%20b/c');
    assert.deepEqual(decoded.head.headers.map((h) => [h.name, h.value]), [['x-a', '1']]);
    assert.deepEqual(Buffer.from(decoded.body), Buffer.from([0, 1, 2, 255]));
  });

  it('serialise through the gRPC method definitions', function () {
    const request = { csrPem: 'pem', appId: 'a', namespace: 'default', token: 't' };
    const bytes = sentryService.signCertificate.requestSerialize(request);
    assert.ok(Buffer.isBuffer(bytes));
    assert.deepEqual({ ...sentryService.signCertificate.requestDeserialize(bytes) }, request);
  });
});

describe('gRPC service definitions', function () {
  const cases = [
    [sentryService, 'skein/sentry/v1/sentry.proto', 'skein.sentry.v1', 'Sentry'],
    [invocationService, 'skein/internal/v1/invocation.proto', 'skein.internal.v1', 'Invocation'],
    [actorService, 'skein/internal/v1/actors.proto', 'skein.internal.v1', 'Actors'],
  ];
  for (const [service, file, pkg, name] of cases) {
    it(`${pkg}.${name} paths match ${file}`, function () {
      const text = protoText(file);
      assert.match(text, new RegExp(`package ${pkg.replace(/\./g, '\\.')};`));
      const rpcs = [...text.matchAll(/rpc (\w+)\((stream )?\w+\) returns \((stream )?\w+\)/g)];
      assert.equal(rpcs.length, Object.keys(service).length);
      for (const [, rpc, requestStream, responseStream] of rpcs) {
        const definition = Object.values(service).find((method) => method.path === `/${pkg}.${name}/${rpc}`);
        assert.ok(definition, `no definition for ${rpc}`);
        assert.equal(definition.requestStream, Boolean(requestStream), `${rpc} request streaming`);
        assert.equal(definition.responseStream, Boolean(responseStream), `${rpc} response streaming`);
      }
    });
  }
});

describe('resource schemas', function () {
  const files = readdirSync(fileURLToPath(new URL('../schemas/', import.meta.url))).filter((name) => name.endsWith('.schema.json'));

  it('ship one schema per resource kind', function () {
    for (const kind of RESOURCE_KINDS) assert.ok(files.includes(`${kind.toLowerCase()}.schema.json`), kind);
  });

  /** Walks a schema, calling `visit` on every object schema that lists properties. */
  function walk(node, path, visit) {
    if (!node || typeof node !== 'object') return;
    if (node.properties) visit(node, path);
    for (const [key, value] of Object.entries(node)) {
      if (key === 'enum' || key === 'const' || key === 'examples' || key === 'default') continue;
      walk(value, `${path}/${key}`, visit);
    }
  }

  for (const file of files) {
    it(`${file}: every property is described and unknown fields are refused`, function () {
      const schema = JSON.parse(protoText(`schemas/${file}`));
      assert.ok(schema.description, 'top-level description');
      walk(schema, '', (node, path) => {
        // Branches of oneOf/anyOf only pick among properties their parent already closes.
        if (/\/(oneOf|anyOf|allOf)\/\d+$/.test(path)) return;
        if (node.additionalProperties === undefined) assert.fail(`${file}${path}: additionalProperties must be set`);
        for (const [name, property] of Object.entries(node.properties)) {
          const described = property.description || (property.$ref && !property.properties);
          assert.ok(described, `${file}${path}/properties/${name} has no description`);
        }
      });
    });
  }

  it('load through the package entry', function () {
    for (const kind of RESOURCE_KINDS) assert.equal(loadSchema(kind).title.length > 0, true, kind);
  });
});
