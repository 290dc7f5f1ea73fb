import type { Bus } from './bus.js';
import type { ClusterDirectory } from './directory.js';

/** What a service needs to reach other nodes. Absent (null) on a single memory-backed node. */
export interface ClusterLink {
  nodeId: string;
  directory: ClusterDirectory;
  bus: Bus;
}
