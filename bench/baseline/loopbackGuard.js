/* global require, module */
/**
 * Loopback only: the benchmark's baselines must never reach a real Microsoft endpoint (the same
 * guard as bench/lib/common.ts installLoopbackGuard, for the plain-JavaScript baselines).
 */
'use strict';

const net = require('node:net');

function installLoopbackGuard() {
  const original = net.Socket.prototype.connect;
  const loopback = (host) => {
    if (host === undefined || host === null || host === '') return true;
    if (typeof host !== 'string') return false;
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
  };
  net.Socket.prototype.connect = function guardedConnect(...args) {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    let host;
    let isPath = false;
    if (typeof first === 'object' && first !== null) {
      isPath = typeof first.path === 'string';
      host = first.host;
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else if (typeof first === 'string') {
      isPath = true;
    }
    if (!isPath && !loopback(host)) throw new Error(`bench loopback guard: refusing to connect to ${String(host)}`);
    return original.apply(this, args);
  };
}

module.exports = { installLoopbackGuard };
