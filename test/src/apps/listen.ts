/**
 * How every test app starts: listen on loopback (the port in `PORT`, or a free one), announce
 * `{"listening": <port>, "pid": <pid>}` on stdout for the harness, and close its connections on SIGTERM.
 */
import type { Server } from 'node:http';

export function listen(server: Server, port = Number(process.env['PORT'] ?? 0)): void {
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ listening: typeof address === 'object' && address ? address.port : 0, pid: process.pid })}\n`);
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
