/** Where a session lives: which node terminates its WebSocket. */
export interface SessionRecord {
  sessionId: string;
  userId: string;
  nodeId: string;
}

export interface NodeInfo {
  nodeId: string;
  startedAt: number;
  /** host:port the node serves on (for operators; clients use the load balancer). */
  address: string;
  /**
   * The bus format the node reads (`BUS_BATCH_FORMAT`: batches too). Absent in records written by
   * releases before it, which read one message per publication (bus-peers.ts).
   */
  bus?: number;
}

/**
 * The cluster's shared directory (Redis only; one node needs none): sessions by user and by node,
 * each session's rooms (so another node can resume it), and the node registry with heartbeats.
 */
export interface ClusterDirectory {
  registerSession(rec: SessionRecord): Promise<void>;
  /** Removes the session, but only if `nodeId` still owns it (a resume elsewhere moved it). */
  unregisterSession(rec: SessionRecord): Promise<void>;
  sessionsOfUser(userId: string): Promise<SessionRecord[]>;
  /**
   * What this node already knows of `userId`'s sessions without asking anyone (a node-local
   * cache), or undefined. Lets a relay to a known user run synchronously.
   */
  knownSessionsOfUser?(userId: string): readonly SessionRecord[] | undefined;
  /**
   * Until when (the clock's monotonic ms) `knownSessionsOfUser`'s answer holds, unless `epoch`
   * changes first; 0 when it has none.
   */
  knownUntil?(userId: string): number;
  /** Changes with every invalidation of what `knownSessionsOfUser` answers. */
  readonly epoch?: number;
  session(sessionId: string): Promise<SessionRecord | null>;
  /** Re-homes a session on `toNode` (cross-node resume); returns the previous owner. */
  moveSession(rec: SessionRecord): Promise<string | null>;
  sessionsOfNode(nodeId: string): Promise<SessionRecord[]>;

  addSessionRoom(sessionId: string, roomId: string): Promise<void>;
  removeSessionRoom(sessionId: string, roomId: string): Promise<void>;
  sessionRooms(sessionId: string): Promise<string[]>;

  /** Announces the node alive for `ttlMs`. */
  heartbeat(info: NodeInfo, ttlMs: number): Promise<void>;
  nodes(): Promise<{ info: NodeInfo; alive: boolean }[]>;
  /** One node's registry record, or null when it is not registered. */
  node(nodeId: string): Promise<NodeInfo | null>;
  /** One survivor wins the right to clean up after a dead node. */
  claimDeadNode(nodeId: string, claimer: string, ttlMs: number): Promise<boolean>;
  forgetNode(nodeId: string): Promise<void>;
  /**
   * A draining node leaves sessions behind for others to resume: it stops being alive at once
   * (instead of after its TTL) but stays registered, so a survivor reaps what nobody resumed.
   */
  markNodeGone(nodeId: string): Promise<void>;

  /**
   * Which node hosts a room's media: claims it for `nodeId` if unowned (or refreshes our claim)
   * for `ttlMs`, and returns the owner either way.
   */
  claimMediaOwner(roomId: string, nodeId: string, ttlMs: number): Promise<string>;
  /** Gives the room's media up, only if `nodeId` still owns it. */
  releaseMediaOwner(roomId: string, nodeId: string): Promise<void>;
}
