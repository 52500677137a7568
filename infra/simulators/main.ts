// CLI: tsx infra/simulators/main.ts [--role national|provincial] [--port 18888] [--store file.ndjson]
import { parseArgs } from 'node:util';
import { startPlatformSimulator } from './platform.js';

const { values } = parseArgs({
  options: { role: { type: 'string', default: 'national' }, port: { type: 'string', default: '18888' }, host: { type: 'string', default: '127.0.0.1' }, store: { type: 'string' } },
});
const role = values.role === 'provincial' ? 'provincial' : 'national';
const sim = await startPlatformSimulator({ role, port: Number(values.port), host: values.host, storeFile: values.store });
console.log(JSON.stringify({ ts: new Date().toISOString(), level: 'info', msg: `${role} platform simulator listening`, url: sim.url }));
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
