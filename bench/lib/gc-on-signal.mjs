// Preloaded (--import) into every server under test when it runs with --expose-gc: SIGUSR2 runs a
// full garbage collection, so that memory is measured on live objects rather than on garbage that
// an idle process has no reason to collect. It changes nothing else in the server.
if (typeof globalThis.gc === 'function') {
  globalThis.process.on('SIGUSR2', () => {
    globalThis.gc();
    globalThis.gc();
  });
}
