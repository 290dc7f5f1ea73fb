import { ParleyError } from './errors.js';

/** What a call asks getUserMedia for when it opens the camera. */
export const cameraConstraints: MediaTrackConstraints = { width: 1280, height: 720 };

/** Opens the default camera (needs a secure context: https or localhost). */
export async function openCamera(
  constraints: MediaTrackConstraints = cameraConstraints,
): Promise<MediaStreamTrack> {
  const devices = globalThis.navigator?.mediaDevices;
  if (!devices?.getUserMedia) {
    throw new ParleyError(
      'MEDIA_ERROR',
      'no camera access here (needs a secure context: https or localhost)',
    );
  }
  try {
    const track = (await devices.getUserMedia({ audio: false, video: constraints })).getVideoTracks()[0];
    if (!track) throw new ParleyError('MEDIA_ERROR', 'no video track');
    return track;
  } catch (err) {
    throw ParleyError.from(err, 'MEDIA_ERROR');
  }
}

/** Asks the user for a screen, window or tab to share (getDisplayMedia). */
export async function openScreen(): Promise<MediaStreamTrack> {
  const devices = globalThis.navigator?.mediaDevices;
  if (!devices?.getDisplayMedia) throw new ParleyError('MEDIA_ERROR', 'screen sharing is not available here');
  try {
    const track = (await devices.getDisplayMedia({ video: true, audio: false })).getVideoTracks()[0];
    if (!track) throw new ParleyError('MEDIA_ERROR', 'no video track');
    return track;
  } catch (err) {
    throw ParleyError.from(err, 'MEDIA_ERROR');
  }
}
