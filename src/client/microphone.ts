import { voiceConstraints } from './defaults.js';
import { ParleyError } from './errors.js';

/** Opens the default microphone with speech-tuned constraints. */
export async function openMicrophone(
  constraints: MediaTrackConstraints = voiceConstraints,
): Promise<MediaStreamTrack> {
  if (!globalThis.navigator?.mediaDevices?.getUserMedia) {
    throw new ParleyError(
      'MEDIA_ERROR',
      'no microphone access here (needs a secure context: https or localhost)',
    );
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: constraints, video: false });
    const track = stream.getAudioTracks()[0];
    if (!track) throw new ParleyError('MEDIA_ERROR', 'no audio track');
    return track;
  } catch (err) {
    throw ParleyError.from(err, 'MEDIA_ERROR');
  }
}
