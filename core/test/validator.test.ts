import assert from 'node:assert/strict';
import { AjvSchemaValidator } from '../src/index.js';

describe('AjvSchemaValidator', function () {
  const schema = { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'Thing' }, size: { enum: ['s', 'm'] } } };
  const validator = new AjvSchemaValidator(() => schema);

  it('accepts a valid document', function () {
    assert.deepEqual(validator.validate('thing', { kind: 'Thing', size: 's' }), []);
  });

  it('names the path and the reason in words', function () {
    assert.deepEqual(validator.validate('thing', { kind: 'Thing', colour: 'red' }), [{ path: '/colour', reason: 'unknown field "colour"' }]);
    assert.deepEqual(validator.validate('thing', {}), [{ path: '/', reason: 'missing required field "kind"' }]);
    assert.deepEqual(validator.validate('thing', { kind: 'Thing', size: 'xl' }), [{ path: '/size', reason: 'must be one of ["s","m"]' }]);
  });
});
