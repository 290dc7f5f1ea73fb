import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The station manifest every Parley server under test runs with: ad-hoc rooms are PTT rooms (join
 * scenario), `fanout` takes the 1,000-member PTT channel, `channel` the SFU channel test (talk
 * bursts long enough for a measurement).
 */
export function benchManifest(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const path = join(dir, 'station.json');
  writeFileSync(
    path,
    JSON.stringify({
      name: 'Parley bench',
      allowAdHocRooms: true,
      adHocRoom: { mode: 'ptt', maxParticipants: 10_000 },
      channels: [
        { id: 'fanout', name: 'Fan-out', mode: 'ptt', maxParticipants: 5_000 },
        { id: 'channel', name: 'SFU channel', mode: 'ptt', maxParticipants: 5_000, maxTalkMs: 600_000 },
      ],
    }),
  );
  return path;
}
