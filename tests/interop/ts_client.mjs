// One interop case with the official MCP TypeScript SDK v2 client (@modelcontextprotocol/client).
//
// Connects to procore-token-mcp over stdio, streamable HTTP or the old HTTP+SSE transport in
// one protocol era, lists the tools, calls get_or_refresh_an_access_token with grant_type=client_credentials, and writes
// what came back (negotiated protocol version, tool list, call result) as JSON for check.py.
// It asserts nothing itself: check.py judges the answer, the same way for every client.
//
// usage: node ts_client.mjs --transport stdio|http|sse --era legacy|modern --server BIN|URL \
//          --client-id ID --client-secret S --out FILE [-- server args…]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  Client,
  SSEClientTransport,
  StreamableHTTPClientTransport,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const TOOL = 'get_or_refresh_an_access_token';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    transport: { type: 'string' },
    era: { type: 'string' },
    server: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    out: { type: 'string' },
  },
});

for (const name of ['transport', 'era', 'server', 'client-id', 'client-secret', 'out']) {
  if (!opts[name]) {
    console.error(`ts_client.mjs: --${name} is required`);
    process.exit(2);
  }
}

const transports = {
  stdio: () => new StdioClientTransport({ command: opts.server, args: positionals }),
  http: () => new StreamableHTTPClientTransport(new URL(opts.server)),
  sse: () => new SSEClientTransport(new URL(opts.server)),
};
if (!transports[opts.transport]) {
  console.error(`ts_client.mjs: unknown transport ${opts.transport}`);
  process.exit(2);
}
const transport = transports[opts.transport]();

// 'auto' probes server/discover and lands on 2026-07-28 when the server offers it;
// check.py then insists that it did.
const client = new Client(
  { name: 'procore-token-mcp-interop', version: '1.0.0' },
  { versionNegotiation: { mode: opts.era === 'legacy' ? 'legacy' : 'auto' } },
);

await client.connect(transport);
try {
  const { tools } = await client.listTools();
  const call = await client.callTool({
    name: TOOL,
    arguments: {
      grant_type: 'client_credentials',
      client_id: opts['client-id'],
      client_secret: opts['client-secret'],
    },
  });
  const result = {
    client: '@modelcontextprotocol/client',
    protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
    tools,
    call,
  };
  writeFileSync(opts.out, JSON.stringify(result, null, 1));
} finally {
  await client.close();
}
