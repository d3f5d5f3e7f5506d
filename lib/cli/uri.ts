import { isIP } from 'node:net';
import mongoose from 'mongoose';
import { CliError, ExitCode } from './args.js';

/** The URI with any password hidden, for messages. */
export function redact(uri: string): string {
  return uri.replace(/^([a-z+]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

/** A host name or an IPv4 address as it may appear in a URI: letters, digits, `-`, `_` and dots. */
const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;
/** Characters MongoDB refuses in a database name (on any platform), and the limit of its length. */
const BAD_DATABASE_CHARACTER = /[/\\. "$*<>:|?\0]/;
const MAX_DATABASE_BYTES = 63;

/**
 * Checks a connection string before any connection is tried, so that a URI that could never work
 * is a usage error at once (exit code 64) rather than a connection that times out: what the
 * driver's own parser refuses, host names that are not host names, and a missing or invalid
 * database name (without one the driver would silently use `test`, and two hosts whose URIs differ
 * only in that would not exclude each other). Returns the database the locks are in.
 */
export function checkUri(uri: string): string {
  const invalid = (why: string) => new CliError(`invalid MongoDB URI "${redact(uri)}": ${why}`, ExitCode.Usage);
  let options: {
    hosts: { host?: string; socketPath?: string; isIPv6: boolean }[];
    srvHost?: string;
    dbName: string;
  };
  try {
    options = new mongoose.mongo.MongoClient(uri).options;
  } catch (error) {
    throw invalid((error as Error).message.split('\n')[0]!);
  }
  for (const { host, socketPath, isIPv6 } of options.hosts) {
    if (socketPath !== undefined) continue;
    if (host === undefined || host === '') throw invalid('a host name is empty');
    if (isIPv6 ? isIP(host) !== 6 : !HOST_NAME.test(host)) throw invalid(`"${host}" is not a host name`);
  }
  if (options.srvHost !== undefined && !HOST_NAME.test(options.srvHost)) {
    throw invalid(`"${options.srvHost}" is not a host name`);
  }
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/i.exec(uri)?.[1];
  if (!path) {
    throw invalid('it names no database: add one, as in mongodb://host:27017/app (mdlock does not default to "test")');
  }
  const database = options.dbName;
  if (BAD_DATABASE_CHARACTER.test(database) || Buffer.byteLength(database) > MAX_DATABASE_BYTES) {
    throw invalid(
      `"${database}" is not a database name (at most ${MAX_DATABASE_BYTES} bytes, none of / \\ . space " $ * < > : | ?)`,
    );
  }
  return database;
}
