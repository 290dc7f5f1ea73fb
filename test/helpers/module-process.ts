import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

/** A child node process running `code`, an ES module, through tsx; its stdin, stdout and stderr are pipes. */
export function spawnModule(code: string): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'pipe' });
}
