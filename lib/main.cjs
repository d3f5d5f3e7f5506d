'use strict';
// The CommonJS entry point, copied to dist/cjs/main.cjs by the build (and the package name's
// target in the tests): the callable `Lock(name, options)` of the 0.0.1 API, with every named
// export beside it, so that `require('mongoose-distributed-lock')('name', options)` keeps working
// and `const { LockManager } = require('mongoose-distributed-lock')` works too.
const api = require('./index');

module.exports = Object.assign(function Lock(name, options) {
  return api.default(name, options);
}, api);
