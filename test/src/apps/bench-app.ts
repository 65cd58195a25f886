/**
 * The benchmark's app: it reads the whole request body and answers with a small fixed JSON body, doing as little
 * work as possible so that what the benchmark measures is the path to it, not the app.
 */
import { createServer } from 'node:http';
import { listen } from './listen.js';

const server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
  let size = 0;
  req.on('data', (chunk: Buffer) => (size += chunk.length));
  req.on('end', () => {
    const body = `{"ok":true,"received":${size}}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
});

listen(server, Number(process.env['APP_PORT'] ?? process.env['PORT'] ?? 0));
