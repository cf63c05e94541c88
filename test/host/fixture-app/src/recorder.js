/* global module, setTimeout */
// Records what the fixture functions saw, for the tests running in the same process.
const KEY = Symbol.for('host-fixture-records');

function records() {
  globalThis[KEY] ??= [];
  return globalThis[KEY];
}

function record(kind, data) {
  records().push({ kind, at: Date.now(), ...data });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { record, records, sleep };
