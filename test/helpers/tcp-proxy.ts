import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 owned by a test, between a gateway and its database: `cut()` drops every
 * connection and refuses new ones (the database is unreachable), `restore()` lets them through again.
 */
export interface TcpProxy {
  port: number;
  /** Connections through the proxy now. */
  readonly open: number;
  cut(): void;
  /** A network that drops packets: connections stay open but nothing passes (new ones hang too). */
  stall(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let cut = false;
  let stalled = false;
  const held = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    if (stalled) {
      held.add(client);
      client.on('error', () => {});
      client.on('close', () => held.delete(client));
      client.pause();
      return;
    }
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cutAll = () => {
    cut = true;
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    get open() {
      return pairs.size;
    },
    cut: cutAll,
    stall() {
      stalled = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    restore() {
      cut = false;
      if (stalled) {
        stalled = false;
        // What hung stays dead, as after a real partition: its clients gave up on it.
        for (const s of held) s.destroy();
        held.clear();
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        pairs.clear();
      }
    },
    async close() {
      cutAll();
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The same database URL, through the proxy. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
