import net from 'node:net';

/**
 * Whether something accepts TCP connections at host:port within `timeoutMs` (a probe: the
 * connection is closed at once). Used to tell "nothing listens" from "it listens but does not
 * answer the protocol" — by the Kafka admin's reachability message and by the stack.
 */
export function tcpOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
