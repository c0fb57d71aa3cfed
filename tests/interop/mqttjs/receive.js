#!/usr/bin/env node
// An MQTT.js subscriber for the interop tests: connects, subscribes (QoS 1),
// parses every payload as a tidegate envelope (JSON) and prints one JSON line
// per message on stdout:
//   {"topic":…,"retain":true|false,"qos":0|1,"envelope":{…}}   or  …,"error":"…"
// Prints {"ready":true} once every subscription is acknowledged, and exits 0
// after --count messages, 1 on a connection error, 2 on --timeout.
//
//   node receive.js --url mqtt://127.0.0.1:1883 --topic 'tidegate/+/events/#'
//                   [--topic …] [--count N] [--timeout SECONDS] [--protocol 4|5]
'use strict';

const mqtt = require('mqtt');

function parseArgs(argv) {
  const opts = { topics: [], count: 1, timeout: 20, protocol: 4, url: 'mqtt://127.0.0.1:1883' };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${key} needs a value`);
    switch (key) {
      case '--url': opts.url = value; break;
      case '--topic': opts.topics.push(value); break;
      case '--count': opts.count = Number(value); break;
      case '--timeout': opts.timeout = Number(value); break;
      case '--protocol': opts.protocol = Number(value); break;
      default: throw new Error(`unknown option ${key}`);
    }
  }
  if (opts.topics.length === 0) throw new Error('at least one --topic');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`receive.js: ${e.message}\n`);
  process.exit(64);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let received = 0;
let done = false;  // once enough messages are in, a reset on the way out is no error

const client = mqtt.connect(opts.url, {
  protocolVersion: opts.protocol,
  clean: true,
  reconnectPeriod: 0,
  connectTimeout: 10000,
  clientId: `it-mqttjs-${process.pid}-${Date.now().toString(36)}`,
});

const timer = setTimeout(() => {
  process.stderr.write(`receive.js: timed out after ${opts.timeout} s with ${received} message(s)\n`);
  client.end(true, () => process.exit(2));
}, opts.timeout * 1000);

client.on('connect', () => {
  client.subscribe(opts.topics, { qos: 1 }, (err, granted) => {
    if (err) {
      process.stderr.write(`receive.js: subscribe failed: ${err.message}\n`);
      process.exit(1);
    }
    const refused = granted.filter((g) => g.qos === 128);
    if (refused.length) {
      process.stderr.write(`receive.js: subscription refused: ${JSON.stringify(refused)}\n`);
      process.exit(1);
    }
    out({ ready: true });
  });
});

client.on('message', (topic, payload, packet) => {
  if (done) return;
  const line = { topic, retain: packet.retain, qos: packet.qos };
  try {
    line.envelope = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    line.error = e.message;
    line.payload = payload.toString('utf8');
  }
  out(line);
  received += 1;
  if (received >= opts.count && !done) {
    done = true;
    clearTimeout(timer);
    client.end(false, () => process.exit(0));
  }
});

client.on('error', (err) => {
  if (done) return;
  process.stderr.write(`receive.js: ${err.message}\n`);
  process.exit(1);
});
