// Component metadata schemas: one per Component type Skein loads, complete enough for editors, and applied by the
// Component schema by `spec.type`, so an editor and `skein run` check the same settings.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMPONENT_METADATA_TYPES, loadComponentMetadataSchema, loadSchema } from '../dist/index.js';

/** Walks a schema, calling `visit` on every object schema that lists properties. */
function walk(node, path, visit) {
  if (!node || typeof node !== 'object') return;
  if (node.properties) visit(node, path);
  for (const [key, value] of Object.entries(node)) {
    if (key === 'enum' || key === 'const' || key === 'examples' || key === 'default') continue;
    walk(value, `${path}/${key}`, visit);
  }
}

describe('component metadata schemas', function () {
  it('ship one schema per Component type with metadata, and no other', function () {
    const files = readdirSync(fileURLToPath(new URL('../schemas/components/', import.meta.url))).sort();
    assert.deepEqual(files, COMPONENT_METADATA_TYPES.map((type) => `${type}.schema.json`).sort());
  });

  for (const type of COMPONENT_METADATA_TYPES) {
    it(`${type}: described, named by $id, and every property described`, function () {
      const schema = loadComponentMetadataSchema(type);
      assert.ok(schema.description, 'top-level description');
      assert.equal(schema.$id, `https://skein.dev/schemas/components/${type}.schema.json`);
      assert.equal(schema.type, 'array');
      walk(schema, '', (node, path) => {
        if (node.additionalProperties === undefined) assert.fail(`${type}${path}: additionalProperties must be set`);
        for (const [name, property] of Object.entries(node.properties)) {
          assert.ok(property === true || property.description || property.$ref, `${type}${path}/properties/${name} has no description`);
        }
      });
    });
  }

  it('are applied by the Component schema according to spec.type', function () {
    const dispatch = loadSchema('Component').properties.spec.allOf;
    assert.deepEqual(
      dispatch.map((branch) => [branch.if.properties.type.const, branch.then.properties.metadata.$ref]),
      COMPONENT_METADATA_TYPES.map((type) => [type, `components/${type}.schema.json`]),
    );
  });
});
