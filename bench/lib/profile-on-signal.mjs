// Preloaded (--import) into a server under test by the connections scenario with
// BENCH_PROFILE=ramp: SIGWINCH starts a V8 CPU profile, the next SIGWINCH stops it and writes it to
// $BENCH_PROFILE_OUT/ramp-<pid>.cpuprofile. The profile then covers the connect ramp alone, not
// start-up or the shutdown of thousands of connections (which --cpu-prof would include).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const proc = globalThis.process;
const out = proc.env.BENCH_PROFILE_OUT;
if (out) {
  const session = new Session();
  session.connect();
  let running = false;
  proc.on('SIGWINCH', () => {
    if (!running) {
      running = true;
      session.post('Profiler.enable', () => session.post('Profiler.start'));
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(out, `ramp-${proc.pid}.cpuprofile`), JSON.stringify(res.profile));
      proc.stderr.write(`ramp profile written (${err ? err.message : 'ok'})\n`);
    });
  });
}
