import { createServer as createTlsServer, type Server as TlsServer, type TlsOptions, type TLSSocket } from 'node:tls';
import { ServerCredentials, type Server } from '@grpc/grpc-js';
import type { Logger } from '../logger.js';

/**
 * Serves a grpc-js server over a Node TLS server we own, instead of grpc-js's own TLS: we see every refused
 * handshake (grpc-js hides them), can rotate certificates with `setSecureContext` without dropping connections,
 * and decide per connection, with `accept`, whether to hand it to gRPC. Resolves once listening.
 */
export async function serveGrpcOverTls(
  grpc: Server,
  options: { tls: TlsOptions; host: string; port: number; log: Logger; accept?: (socket: TLSSocket) => boolean },
): Promise<{ server: TlsServer; port: number }> {
  const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
  const server = createTlsServer({ ALPNProtocols: ['h2'], ...options.tls }, (socket: TLSSocket) => {
    if (options.accept && !options.accept(socket)) {
      socket.destroy();
      return;
    }
    injector.injectConnection(socket);
  });
  server.on('tlsClientError', (error, socket) => options.log.warn('TLS handshake refused', { remote: socket.remoteAddress, reason: error.message }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : options.port };
}
