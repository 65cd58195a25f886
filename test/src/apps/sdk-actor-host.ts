/**
 * An actor host written with the official Dapr JS SDK (`DaprServer` over HTTP), unchanged from how its docs show
 * it: ports from APP_PORT and DAPR_HTTP_PORT, `server.actor.init()`, `registerActor`, `start()`.
 */
import { CommunicationProtocolEnum, DaprServer, LogLevel } from '@dapr/dapr';
import { SdkCounterActor } from './sdk-counter-actor.js';

const server = new DaprServer({
  serverHost: '127.0.0.1',
  serverPort: process.env['APP_PORT'] ?? '3000',
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  clientOptions: { daprHost: '127.0.0.1', daprPort: process.env['DAPR_HTTP_PORT'] ?? '3500', communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } },
  logger: { level: LogLevel.Error },
});
await server.actor.init();
await server.actor.registerActor(SdkCounterActor);
await server.start();
process.stdout.write(`${JSON.stringify({ sdkActorHost: 'started', actorTypes: await server.actor.getRegisteredActors() })}\n`);
process.on('SIGTERM', () => {
  void server.stop().finally(() => process.exit(0));
});
