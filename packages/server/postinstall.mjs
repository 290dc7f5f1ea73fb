// The packed server runs the repository's mediasoup worker installer (scripts/mediasoup, copied in
// by scripts/build-package.ts at pack time). Inside the repository the folder is absent and the
// root package's own postinstall does the same job, so this does nothing there.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const installer = new URL('./scripts/mediasoup/ensure-worker.mjs', import.meta.url);
if (existsSync(installer)) await import(installer.href);
