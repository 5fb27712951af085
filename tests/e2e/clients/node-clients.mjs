// ioredis 5 and node-redis 5 (RESP2 and RESP3) against grid nodes: MULTI/EXEC, WATCH, EVAL
// (EVALSHA with fallback), and pub/sub across nodes. Usage: node node-clients.mjs PORT...
// (the first port is used for writes, the others for subscribers). Prints one JSON line per
// check; exits non-zero on the first failure.
import Redis from "ioredis";
import { createClient } from "redis";

const ports = process.argv.slice(2).map(Number);
const [writePort, ...others] = ports;
const subPort = others[0] ?? writePort;

function check(name, ok, detail) {
  console.log(JSON.stringify({ name, ok, detail }));
  if (!ok) process.exit(1);
}

async function withIoredis() {
  const r = new Redis({ port: writePort, host: "127.0.0.1", maxRetriesPerRequest: 3 });
  const tag = "{io}";
  await r.del(`${tag}a`, `${tag}b`);
  const res = await r.multi().set(`${tag}a`, "1").incr(`${tag}a`).rpush(`${tag}b`, "x").exec();
  check("ioredis multi", JSON.stringify(res) === JSON.stringify([[null, "OK"], [null, 2], [null, 1]]), res);
  // WATCH: a write by another client aborts the transaction (exec answers null).
  const other = new Redis({ port: subPort, host: "127.0.0.1" });
  await r.watch(`${tag}a`);
  await other.set(`${tag}a`, "changed");
  const aborted = await r.multi().set(`${tag}a`, "mine").exec();
  check("ioredis watch abort", aborted === null, aborted);
  r.defineCommand("addTo", { numberOfKeys: 1, lua: "return redis.call('incrby', KEYS[1], ARGV[1])" });
  await r.set(`${tag}n`, "10");
  const first = await r.addTo(`${tag}n`, 5); // EVALSHA, NOSCRIPT, then EVAL
  const second = await r.addTo(`${tag}n`, 5); // EVALSHA
  check("ioredis eval", first === 15 && second === 20, [first, second]);
  // Pub/sub: a subscriber on another node gets what is published here.
  const sub = new Redis({ port: subPort, host: "127.0.0.1" });
  const got = new Promise((resolve) => sub.on("pmessage", (p, ch, msg) => resolve([p, ch, msg])));
  await sub.psubscribe("news.*");
  await r.publish("news.today", "hello");
  const message = await Promise.race([got, new Promise((res) => setTimeout(() => res(null), 5000))]);
  check("ioredis pubsub", JSON.stringify(message) === JSON.stringify(["news.*", "news.today", "hello"]), message);
  for (const c of [r, other, sub]) c.disconnect();
}

async function withNodeRedis(resp) {
  const url = `redis://127.0.0.1:${writePort}`;
  const c = createClient({ url, RESP: resp });
  await c.connect();
  const tag = `{nr${resp}}`;
  await c.del([`${tag}a`, `${tag}h`]);
  const res = await c.multi().set(`${tag}a`, "1").incr(`${tag}a`).hSet(`${tag}h`, "f", "v").exec();
  check(`node-redis RESP${resp} multi`, JSON.stringify(res) === JSON.stringify(["OK", 2, 1]), res);
  const sum = await c.eval("return redis.call('incrby', KEYS[1], ARGV[1])", { keys: [`${tag}a`], arguments: ["40"] });
  check(`node-redis RESP${resp} eval`, sum === 42, sum);
  const map = await c.hGetAll(`${tag}h`);
  check(`node-redis RESP${resp} hgetall`, map.f === "v", map);
  const sub = createClient({ url: `redis://127.0.0.1:${subPort}`, RESP: resp });
  await sub.connect();
  const got = new Promise((resolve) => sub.subscribe(`chan${resp}`, (msg, ch) => resolve([ch, msg])));
  await new Promise((res) => setTimeout(res, 200));
  await c.publish(`chan${resp}`, "hi");
  const message = await Promise.race([got, new Promise((res) => setTimeout(() => res(null), 5000))]);
  check(`node-redis RESP${resp} pubsub`, JSON.stringify(message) === JSON.stringify([`chan${resp}`, "hi"]), message);
  await sub.quit();
  await c.quit();
}

await withIoredis();
await withNodeRedis(2);
await withNodeRedis(3);
console.log(JSON.stringify({ name: "done", ok: true }));
process.exit(0);
