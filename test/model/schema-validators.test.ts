import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DSSE_SCHEMA, LAYOUT_SCHEMA, LINK_SCHEMA, METABLOCK_SCHEMA, checkSchema } from '../../src/model/schemas.js';
import { InTotoError } from '../../src/errors.js';

/**
 * src/model/schema-validators.ts holds the schemas compiled ahead of time by ajv. It must be
 * exactly what the generator makes from today's schemas (else schemas.ts silently falls back to
 * compiling at run time, and this test says to regenerate).
 */
describe('precompiled schema validators', () => {
  it('are up to date with src/model/schemas.ts (regenerate: npm run build && node scripts/gen-schema-validators.mjs)', async () => {
    const url = new URL('../../scripts/gen-schema-validators.mjs', import.meta.url).href;
    const { generate } = (await import(url)) as { generate: (schemas: Record<string, unknown>) => string };
    const expected = generate({ layout: LAYOUT_SCHEMA, link: LINK_SCHEMA, metablock: METABLOCK_SCHEMA, dsse: DSSE_SCHEMA });
    const actual = readFileSync(new URL('../../src/model/schema-validators.ts', import.meta.url), 'utf8');
    expect(actual === expected).toBe(true);
  });

  it('report violations with their JSON paths, as ajv at run time does', () => {
    let error: unknown;
    try {
      checkSchema(METABLOCK_SCHEMA, { signatures: [{ keyid: 'x', sig: 'zz' }], signed: 1 } as never, 'f');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InTotoError);
    expect((error as InTotoError).code).toBe('E_SCHEMA');
    expect((error as InTotoError).details.some((d) => d.startsWith('/signatures/0/keyid'))).toBe(true);
    expect((error as InTotoError).details.some((d) => d.startsWith('/signed'))).toBe(true);
  });
});
