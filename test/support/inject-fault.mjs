// Loaded into a gateway process with `node --import`: a request carrying `x-inject-fault: uncaught`
// makes the process throw an exception nothing catches, from the listener of its response's
// 'close' event, right after the gateway's own 'close' listener has logged the request's access
// line. The line is then still batched in the same turn of the event loop, which is what a fatal
// error must not lose. Nothing else changes: every other request is served as usual.
import http from 'node:http';

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, ...args) {
  const handled = emit.call(this, event, ...args);
  if (event === 'request' && args[0].headers['x-inject-fault'] === 'uncaught') {
    args[1].once('close', () => {
      throw new Error('injected fault');
    });
  }
  return handled;
};
