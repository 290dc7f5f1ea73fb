import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** What ffprobe says of an audio file's first stream. */
export async function probe(path: string): Promise<{ codec: string; durationMs: number; channels: number }> {
  const { stdout } = await run('ffprobe', [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_name,channels:format=duration',
    '-of',
    'json',
    path,
  ]);
  const out = JSON.parse(stdout) as {
    streams: { codec_name: string; channels: number }[];
    format: { duration: string };
  };
  return {
    codec: out.streams[0].codec_name,
    channels: out.streams[0].channels,
    durationMs: Math.round(Number(out.format.duration) * 1000),
  };
}

/** Decodes a file with ffmpeg to 48 kHz mono signed 16-bit PCM. Rejects if ffmpeg finds it broken. */
export async function decodePcm(path: string): Promise<Int16Array> {
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-xerror', '-i', path, '-f', 's16le', '-ac', '1', '-ar', '48000', '-'],
    { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
  );
  const buf = stdout as unknown as Buffer;
  return new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
}

/** Root mean square of PCM samples (0..32768). */
export function rms(pcm: Int16Array): number {
  if (pcm.length === 0) return 0;
  let sum = 0;
  for (const s of pcm) sum += s * s;
  return Math.sqrt(sum / pcm.length);
}

/** The dominant frequency of a steady tone, from its rising zero crossings (Hz). */
export function toneFrequency(pcm: Int16Array, sampleRate = 48_000): number {
  let crossings = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1] < 0 && pcm[i] >= 0) crossings++;
  return (crossings * sampleRate) / pcm.length;
}

/** Encodes `seconds` of a sine tone to Ogg Opus with ffmpeg (libopus, 20 ms frames). */
export async function encodeTone(path: string, seconds: number, hz = 440, channels = 1): Promise<void> {
  await run('ffmpeg', [
    '-v',
    'error',
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`,
    '-ac',
    String(channels),
    '-c:a',
    'libopus',
    '-frame_duration',
    '20',
    '-y',
    path,
  ]);
}
