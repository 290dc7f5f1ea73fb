import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/**
 * TRUST_PROXY, parsed (config/env.ts): how many reverse proxies stand in front of the node
 * (`0`: none, X-Forwarded-For is ignored), or the addresses and CIDR ranges of the trusted ones.
 */
export type TrustProxySetting = number | readonly string[];

/**
 * Which peers are trusted reverse proxies, and so which X-Forwarded-For entry is the client.
 *
 * A proxy appends the address it saw to X-Forwarded-For (HAProxy's `option forwardfor`, nginx's
 * `$proxy_add_x_forwarded_for`); everything to the left of what a trusted proxy appended came from
 * the client and can be made up. So the chain is read from the right, the socket's peer first:
 * - a hop count N trusts the peer and the N - 1 entries it vouches for, and the client is the
 *   entry just left of them (with N = 1, `true`, the last entry);
 * - a list of proxies trusts the peer only if it is in the list, then each entry to its left that
 *   is in the list too; the client is the rightmost entry that is not (a direct client, not a
 *   proxy, cannot pick its address at all).
 * If every entry is trusted, the leftmost one is the best there is.
 */
export class ProxyTrust {
  readonly #hops: number;
  readonly #list: BlockList | null;

  constructor(setting: TrustProxySetting) {
    if (typeof setting === 'number') {
      this.#hops = setting;
      this.#list = null;
    } else {
      this.#hops = 0;
      this.#list = new BlockList();
      for (const entry of setting) addToList(this.#list, entry);
    }
  }

  /** Whether anything is trusted at all (TRUST_PROXY set). */
  get enabled(): boolean {
    return this.#hops > 0 || this.#list !== null;
  }

  /**
   * Whether a socket from `address` comes through a trusted proxy, so that its own address says
   * nothing about the client (the socket guard then cannot count it per address at accept).
   */
  isProxy(address: string): boolean {
    if (this.#list) return contains(this.#list, address);
    return this.#hops > 0;
  }

  /** The client's address for limits and logs. */
  clientAddress(req: IncomingMessage): string {
    const peer = peerAddress(req.socket);
    if (!this.enabled) return peer;
    const xff = req.headers['x-forwarded-for'];
    const entries = (Array.isArray(xff) ? xff.join(',') : (xff ?? ''))
      .split(',')
      .map((s) => normalize(s.trim()))
      .filter(Boolean);
    // Right to left: the socket's peer, then what each proxy appended.
    const chain = [...entries, peer];
    if (this.#list) {
      for (let i = chain.length - 1; i >= 0; i--) {
        const hop = chain[i];
        if (!contains(this.#list, hop)) return hop;
      }
      return chain[0];
    }
    const index = chain.length - 1 - this.#hops;
    return chain[Math.max(0, index)];
  }
}

/** The client's address behind `trust`: the socket's, or the one TRUST_PROXY makes it. */
export function clientAddress(req: IncomingMessage, trust: ProxyTrust): string {
  return trust.clientAddress(req);
}

/** A socket's own address, as the per-address counts key it. */
export function peerAddress(socket: { remoteAddress?: string | undefined }): string {
  return normalize(socket.remoteAddress ?? 'unknown');
}

function addToList(list: BlockList, entry: string): void {
  const [ip = '', bits] = entry.split('/');
  const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(ip, type);
  else list.addSubnet(ip, Number(bits), type);
}

function contains(list: BlockList, address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * One address, one key: `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is `10.0.0.1`,
 * and a port that some proxies append to the X-Forwarded-For entry (`203.0.113.9:51234`,
 * `[2001:db8::1]:443`; Azure Application Gateway, IIS ARR) is dropped. With the port kept, each
 * connection of one client (a new source port every time) would be a new address to the
 * per-address limits, and a trusted proxy that wrote its own address with a port would not be
 * recognised in the list.
 */
function normalize(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address);
  if (bracketed?.[1] && isIP(bracketed[1]) === 6) return normalize(bracketed[1]);
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(address);
  if (v4WithPort?.[1] && isIP(v4WithPort[1]) === 4) return v4WithPort[1];
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
