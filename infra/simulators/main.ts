// CLI: tsx infra/simulators/main.ts [--role national|provincial] [--port 18888] [--host 127.0.0.1]
//        [--store file.ndjson] [--control-port 0]
//        [--key platform-sm2.pem] [--hospital-pubkey hospital-sm2.pub.pem] [--hospital-name NAME]
//        [--tls-cert server.crt --tls-key server.key --ca ca.crt] [--exit-with-stdin]
// Without --key / --hospital-pubkey it uses the well-known development keys (shared/uplink/dev-keys.ts);
// with --tls-* it serves HTTPS and requires a client certificate issued by --ca (docs/uplink.md).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startPlatformSimulator } from './platform.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'national' },
    port: { type: 'string', default: '18888' },
    host: { type: 'string', default: '127.0.0.1' },
    store: { type: 'string' },
    'control-port': { type: 'string', default: '0' },
    key: { type: 'string' },
    'hospital-pubkey': { type: 'string' },
    'hospital-name': { type: 'string', default: 'hospital-front' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    ca: { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});
const read = (f: string) => readFileSync(f, 'utf8');
const role = values.role === 'provincial' ? 'provincial' : 'national';
const tlsGiven = values['tls-cert'] || values['tls-key'] || values.ca;
if (tlsGiven && !(values['tls-cert'] && values['tls-key'] && values.ca)) {
  console.error('--tls-cert, --tls-key and --ca go together');
  process.exit(2);
}
const sim = await startPlatformSimulator({
  role,
  port: Number(values.port),
  host: values.host,
  storeFile: values.store,
  controlPort: Number(values['control-port']),
  ...(values.key ? { keyPem: read(values.key) } : {}),
  ...(values['hospital-pubkey'] ? { hospitals: [{ name: values['hospital-name']!, publicKeyPem: read(values['hospital-pubkey']) }] } : {}),
  ...(tlsGiven ? { tls: { cert: read(values['tls-cert']!), key: read(values['tls-key']!), ca: read(values.ca!) } } : {}),
});
console.log(
  JSON.stringify({ ts: new Date().toISOString(), level: 'info', msg: `${role} platform simulator listening`, url: sim.url, control: sim.controlUrl }),
);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started by `make up` with a pipe as its stdin: the pipe ends when make up's process does, however it
// ended (a kill -9 included), and the simulator goes with it instead of holding its port.
if (values['exit-with-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
