#!/usr/bin/env node
'use strict';
// `npm run test:replset`: runs spec/replset/*.replset.ts against the replica set MONGODB_URI names.
// It stops at once, saying why, if MONGODB_URI is unset or names something other than a replica
// set (a standalone server, a mongos): those tests step a primary down and read secondaries.
const { spawnSync } = require('node:child_process');
const { MongoClient } = require('mongodb');

async function main() {
  const uri = process.env.MONGODB_URI;
  if (!uri) {
    console.error(
      'test:replset needs a replica set: set MONGODB_URI, e.g. MONGODB_URI="mongodb://h1,h2,h3/?replicaSet=rs0" npm run test:replset',
    );
    return 2;
  }
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  let hello;
  try {
    hello = await client.db('admin').command({ hello: 1 });
  } catch (error) {
    console.error(`test:replset: cannot reach ${uri}: ${error.message}`);
    return 2;
  } finally {
    await client.close().catch(() => {});
  }
  if (typeof hello.setName !== 'string') {
    const what = hello.msg === 'isdbgrid' ? 'a mongos router' : 'a standalone server';
    console.error(`test:replset needs a replica set, and ${uri} is ${what}: nothing was run`);
    return 2;
  }
  console.log(`test:replset: replica set "${hello.setName}" (${(hello.hosts ?? []).length} data-bearing members)`);
  const jest = require.resolve('jest/bin/jest');
  const result = spawnSync(process.execPath, [jest, '-c', 'jest.replset.config.js', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MDL_TEST_URI: uri },
  });
  return result.status ?? 1;
}

main().then((code) => process.exit(code));
