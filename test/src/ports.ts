import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A port that is free now, for the few places that must name a port up front (a multi-app run file,
 * an app started by `skein run -- <cmd>`). Everything else binds port 0.
 *
 * The port is drawn from outside the kernel's ephemeral range: every port-0 listener of the run (sidecars,
 * NATS, test servers) takes its port from that range, so a port chosen there could be taken by one of them
 * between this check and the app's bind. Ports handed out once are not handed out again by this process.
 */
export async function freePort(): Promise<number> {
  const [low, high] = namedPortRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${String(low)}-${String(high)} after 200 tries`);
}

const handedOut = new Set<number>();

/** Below the ephemeral range when there is room there (Linux: 32768-60999), above it otherwise. */
function namedPortRange(): [number, number] {
  let ephemeral: [number, number] = [32768, 60999];
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a !== undefined && b !== undefined && Number.isInteger(a) && Number.isInteger(b)) ephemeral = [a, b];
  } catch {
    // Not Linux: keep the common default.
  }
  if (ephemeral[0] - 20000 >= 2000) return [20000, ephemeral[0]];
  return [ephemeral[1] + 1, 65535];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
