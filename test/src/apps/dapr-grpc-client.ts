/**
 * An app that uses the official Dapr JS client in gRPC mode, pointed at its sidecar the way Dapr apps find it:
 * `DAPR_GRPC_PORT` from the environment. It reads the metadata, invokes `$TARGET_APP_ID`, prints one JSON line
 * with what it got, and stays up until stopped (so `skein run` keeps running it).
 */
import { CommunicationProtocolEnum, DaprClient, HttpMethod, LogLevel } from '@dapr/dapr';

const grpcPort = process.env['DAPR_GRPC_PORT'] ?? '';
const client = new DaprClient({ daprHost: '127.0.0.1', daprPort: grpcPort, communicationProtocol: CommunicationProtocolEnum.GRPC, logger: { level: LogLevel.Error } });

try {
  const metadata = await client.metadata.get();
  const echo = await client.invoker.invoke(process.env['TARGET_APP_ID'] ?? 'echo', 'from-app?via=grpc', HttpMethod.POST, { from: metadata.id });
  process.stdout.write(`${JSON.stringify({ grpcClient: { grpcPort, grpcEndpoint: process.env['DAPR_GRPC_ENDPOINT'] ?? '', appId: process.env['APP_ID'] ?? '', metadataId: metadata.id, echo } })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ grpcClient: { grpcPort, error: (error as Error).message } })}\n`);
}

const keepAlive = setInterval(() => undefined, 60_000);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  process.exit(0);
});
