/** Every default of the SDK in one place, with units in the names. Options override them. */
export const clientDefaults = {
  // ---- signaling ----
  /** A request without a reply after this long rejects with TIMEOUT. */
  requestTimeoutMs: 10_000,
  /** Opening the socket and receiving `welcome` must take less than this. */
  connectTimeoutMs: 10_000,
  /**
   * Application-level ping period. Browsers cannot see WebSocket pings, so this is how a client
   * notices a dead connection. Default: half the server's heartbeat interval, within these bounds.
   */
  minPingIntervalMs: 5_000,
  maxPingIntervalMs: 25_000,
  /** No pong after this long: the connection is considered dead and replaced. */
  pingTimeoutMs: 10_000,
  /** Messages kept while reconnecting; beyond it new ones are refused. */
  maxQueuedMessages: 256,
  /** Resume is not tried when the outage is this close to the server's grace window. */
  resumeMarginMs: 500,

  // ---- calls ----
  /** An unanswered call is hung up (reason `no-answer`) after this long. */
  ringTimeoutMs: 45_000,
  /** ICE that stays `disconnected` this long is restarted (`failed` restarts at once). */
  iceDisconnectedRestartMs: 3_000,
  /** A call whose connection cannot be (re-)established within this long ends with `failed`. */
  callConnectTimeoutMs: 30_000,

  // ---- PTT ----
  /** Re-creating media after `media:closed` or a failed resume waits this long first. */
  mediaRetryDelayMs: 500,
} as const;

/** What the SDK asks getUserMedia for: speech-tuned processing, mono. */
export const voiceConstraints: MediaTrackConstraints = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  channelCount: 1,
};
