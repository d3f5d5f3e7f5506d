'use strict';

module.exports = async function globalTeardown() {
  await globalThis.__MDL_ENGINE__?.stop();
};
