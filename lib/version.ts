/**
 * The package's version, as its tracer and meter report it. Kept equal to package.json's by the
 * build (scripts/build.cjs refuses to build otherwise) and by spec/tooling/hygiene.spec.ts: read
 * from a constant, since the file that reads it runs from lib/, dist/esm/ and dist/cjs/ alike.
 */
export const VERSION = '1.0.0-dev';
