/**
 * How long a test waits for the server's TTL monitor: about a second on the test engine, but a
 * stock `mongod` (MONGODB_URI) passes once a minute, so allow two passes and some.
 */
export const TTL_PASS = { timeout: 130_000, what: 'the TTL monitor' };

/** The Jest timeout of a test that waits for the TTL monitor. */
export const TTL_TEST_TIMEOUT = 150_000;
