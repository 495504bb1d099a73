// Turns the results of bench/run.sh into docs/benchmarks.md and the data files of the latency
// chart (bench/latency.gp draws them); with `tls` (bench/run.sh tls), the HTTPS comparison alone
// into OUT.md, and its ratio as one line on standard output; with `batch` (bench/run.sh batch), the
// batch status lookup alone (section 7), likewise.
//   node bench/report.mjs RESULTS_DIR OUT.md PLOT_DIR [tls|batch]
import fs from "node:fs";
import path from "node:path";

const [resultsDir, outMd, plotDir, mode] = process.argv.slice(2);
if (!resultsDir || !outMd || !plotDir || (mode !== undefined && mode !== "tls" && mode !== "batch")) {
  console.error("usage: node bench/report.mjs RESULTS_DIR OUT.md PLOT_DIR [tls|batch]");
  process.exit(2);
}
const tlsOnly = mode === "tls";
const batchOnly = mode === "batch";

const read = (name) => {
  const file = path.join(resultsDir, name);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : null;
};
// Every round of one contender, in round order.
const rounds = (prefix) =>
  fs
    .readdirSync(resultsDir)
    .filter((f) => f.startsWith(`${prefix}-r`) && f.endsWith(".json"))
    .sort((a, b) => Number(a.match(/-r(\d+)/)[1]) - Number(b.match(/-r(\d+)/)[1]))
    .map((f) => ({ name: f.replace(/\.json$/, ""), ...read(f) }));

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const s = sorted(xs);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const pick = (rs, f) => rs.map(f).filter((x) => Number.isFinite(x));

const fmt = (x, digits) => {
  if (!Number.isFinite(x)) return "–";
  if (digits !== undefined) return x.toFixed(digits);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toFixed(3);
};
// "median (min–max)"
const mmm = (xs, digits) => {
  if (!xs.length) return "–";
  const s = sorted(xs);
  return `**${fmt(median(s), digits)}** (${fmt(s[0], digits)}–${fmt(s[s.length - 1], digits)})`;
};
const ratio = (a, b) => a / b;
// Per-round ratios of alternating contenders: A of round i over B of round i.
const pairedRatios = (as, bs) => as.map((a, i) => ratio(a, bs[i])).filter(Number.isFinite);
// CPU time other processes took during a contender's runs, in % of one core: median (max).
const noise = (rs) => {
  const xs = pick(rs, (r) => r.other_cpu_pct);
  return xs.length ? `${fmt(median(xs), 0)} (${fmt(Math.max(...xs), 0)})` : "–";
};
// Steal: time the hypervisor took the server's CPU away, in % of the measurement: median (max).
const stolen = (rs) => {
  const xs = pick(rs, (r) => r.stolen_pct);
  return xs.length ? `${fmt(median(xs), 1)} (${fmt(Math.max(...xs), 1)})` : "–";
};
const cpu = (rs) => mmm(pick(rs, (r) => r.server_cpu_pct), 0);
const verdict = (ok) => (ok ? "met" : "**missed**");

const machine = read("machine.json");
const body = read("body.json");
const seed1k = read("seed-1k.json");
const seed1m = read("seed-1m.json");
const memory = read("memory.json");
const durability = read("durability.json");
const elapsed = read("elapsed.json");

const s1c = rounds("s1-callgate");
const s1n = rounds("s1-nginx");
const s2c = rounds("s2-callgate");
const s2n = rounds("s2-nginx");
const s2ci = rounds("s2-callgate-idle");
const s2ni = rounds("s2-nginx-idle");
const s2qc = rounds("s2q-callgate");
const s2qn = rounds("s2q-nginx");
const s31k = rounds("s3-1k");
const s31m = rounds("s3-1m");
const s31mn = rounds("s3-1m-nocache");
const s4f = rounds("s4-fsync");
const s4r = rounds("s4-reserve");
const s4r1 = rounds("s4-reserve1");
const s4w = rounds("s4-webhook");
const s5c = rounds("s5-callgate");
const s5p = rounds("s5-prism");
const s6c = rounds("s6-callgate");
const s6n = rounds("s6-nginx");
const tls = read("tls.json");
const s7g = rounds("s7-get");
const s7b = rounds("s7-batch");
const batch = read("batch.json");

const rps = (rs) => pick(rs, (r) => r.rps);
const okps = (rs) => pick(rs, (r) => r.ok_per_s);
const lat = (rs, p) => pick(rs, (r) => r.latency_ms?.[p]);
const non2xx = (rs) => rs.reduce((n, r) => n + (r.non_2xx ?? 0), 0);
const statusMix = (rs) => {
  const all = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.status ?? {})) all[k] = (all[k] ?? 0) + v;
  return Object.entries(all)
    .map(([k, v]) => `${k}: ${v.toLocaleString("en-US")}`)
    .join(", ") || "no answers";
};

// Every ratio is the median of the per-round ratios (A and B of the same round), as in the
// sections' ratio rows.
const getRatio = median(pairedRatios(rps(s1c), rps(s1n)));
const p99Half = median(lat(s2c, "p99"));
const p99HalfIdle = median(lat(s2ci, "p99"));
const p99HalfNginx = median(lat(s2n, "p99"));
const p99Quarter = median(lat(s2qc, "p99"));
const scaleRatio = median(pairedRatios(rps(s31m), rps(s31k)));
const bytesPerPair = seed1m?.bytes_per_pair;
const fsyncRate = median(pick(s4f, (r) => r.fsync_per_s));
const reserveRate = median(okps(s4r));
const webhookRate = median(okps(s4w));
const prismRatio = median(pairedRatios(rps(s5c), rps(s5p)));
const httpsRatio = median(pairedRatios(rps(s6c), rps(s6n)));
const fsyncs = pick(s4f, (r) => r.fsync_per_s);
const reserveRatio = median(pairedRatios(okps(s4r), fsyncs));
const webhookRatio = median(pairedRatios(okps(s4w), fsyncs));
const writesMeasured = s4r.some((r) => r.ok > 0) || s4w.some((r) => r.ok > 0);
const lost =
  durability &&
  (durability.stored_reservations < durability.acked_reservations ||
    durability.stored_webhooks < durability.acked_webhooks);

const L = [];
const line = (s = "") => L.push(s);
const table = (header, rows) => {
  line(`| ${header.join(" | ")} |`);
  line(`|${header.map(() => "---").join("|")}|`);
  for (const r of rows) line(`| ${r.join(" | ")} |`);
  line();
};

line(tlsOnly ? "# Benchmark: HTTPS status GET" : batchOnly ? "# Benchmark: batch status lookup" : "# Benchmarks");
line();
line(
  `Written by \`${machine.command}\` from one run on ${machine.date}. Every figure is **median** ` +
    `(min–max) over ${machine.rounds} rounds (section 1: ${Math.max(machine.rounds, 5)}; section 6: ${tls?.rounds ?? "–"} of ${tls?.duration ?? "–"} s); the contenders of each comparison were measured ` +
    `alternately (A B A B …) in the same run, so their ratio is what to read: these machines are ` +
    `shared and noisy, absolute numbers move between runs. "Other CPU %" is the CPU time that ` +
    `processes other than the measured server and its load generator took during a ` +
    `contender's runs, in % of one core, median (max): the noise each figure was measured under; ` +
    `"stolen %" the time the hypervisor gave the server's CPU to other guests (steal).`,
);
line();
line("## Machine and command");
line();
table(
  ["", ""],
  [
    ["command", `\`${machine.command}\` (total ${Math.round((elapsed?.seconds ?? 0) / 60)} min, install and build included)`],
    ["cores", `${machine.nproc} × ${machine.cpu}`],
    ["memory", machine.memory],
    ["kernel / OS", `${machine.kernel} / ${machine.os}`],
    ["data filesystem", machine.fs],
    [
      "other work on the machine",
      `${machine.busy_at_start} % of both cores busy before the measurements, ` +
        `${elapsed?.busy_at_end ?? "–"} % after (1 s samples, harness idle); during the runs ` +
        `other processes took ${noise([s1c, s1n, s2c, s2n, s2ci, s2ni, s2qc, s2qn, s31k, s31m, s31mn, s4f, s4r, s4w, s4r1, s5c, s5p, s6c, s6n, s7g, s7b].flat())} % of one core, median (max) ` +
        "— the \"other CPU %\" columns below give it per contender; " +
        `${elapsed?.redone ?? 0} measurement(s) were redone because other work disturbed them`,
    ],
    ["callgate", `commit ${machine.commit}, Release build (${machine.cxx})`],
    [
      "contenders",
      batchOnly
        ? `wrk ${machine.wrk}, the status GET against the batch POST of the same server`
        : tlsOnly
        ? `nginx ${machine.nginx}, wrk ${machine.wrk}; ${tls?.openssl ?? "OpenSSL"} for both servers and wrk`
        : `nginx ${machine.nginx}, Prism ${machine.prism} on Node ${machine.node}, wrk ${machine.wrk}`,
    ],
    [
      "settings",
      `load generators pinned to CPU 0, each server to CPU 1 (taskset); callgate \`--threads 1\`, ` +
        `${batchOnly ? "" : "nginx 1 worker with access_log off; "}${machine.connections} keep-alive connections, ` +
        `${machine.warmup} s warmup then ${tlsOnly ? tls?.duration : batchOnly ? batch?.duration : machine.duration} s measured; all on 127.0.0.1`,
    ],
  ],
);

// Section 7, alone with `batch`: users looked up per second in batches vs status GETs per second.
if (batchOnly) {
  const items = batch?.items ?? 1000;
  const users = rps(s7b).map((x) => x * items);
  const ratios = pairedRatios(users, rps(s7g));
  const batchRatio = median(ratios);
  line("## Target");
  line();
  table(
    ["target", "measured", "verdict"],
    [[`users looked up per second in batches of ${items} ≥ 10 × status GETs per second`, `${fmt(batchRatio, 1)} ×`, verdict(batchRatio >= 10)]],
  );
  line("## 7. Batch status lookup vs status GET");
  line();
  line(
    `The same \`wrk -t1 -c${machine.connections} --latency\` runs against one callgate ` +
      `(\`--threads 1\`, the 1k-pair store), ${batch?.rounds} rounds of ${batch?.duration} s ` +
      `alternating: section 1's status GET (one URL, the status pair) and ` +
      `\`POST …/callPermissions/batch\` with one fixed body naming ${items} distinct stored ` +
      `destinations (${fmt(batch?.request_bytes)} bytes; the answer ${fmt(batch?.response_bytes)} bytes, ` +
      `every item a status, checked before measuring).`,
  );
  line();
  table(
    ["", "req/s", "users/s", "p50 ms", "p99 ms", "non-2xx", "server CPU %", "other CPU %", "stolen %"],
    [
      ["status GET", mmm(rps(s7g)), mmm(rps(s7g)), mmm(lat(s7g, "p50")), mmm(lat(s7g, "p99")), non2xx(s7g), cpu(s7g), noise(s7g), stolen(s7g)],
      [`batch of ${items}`, mmm(rps(s7b)), mmm(users), mmm(lat(s7b, "p50")), mmm(lat(s7b, "p99")), non2xx(s7b), cpu(s7b), noise(s7b), stolen(s7b)],
      ["batch users/s ÷ GET/s", "", mmm(ratios, 1), "", "", "", "", "", ""],
    ],
  );
  line("(The ratio row is per round: the batch's users per second over the GET's rate in the same round.)");
  line();
  fs.mkdirSync(path.dirname(outMd), { recursive: true });
  fs.writeFileSync(outMd, L.join("\n"));
  const s = sorted(ratios);
  console.log(
    `batch status lookup, users/s in batches of ${items} / status GET/s: ${fmt(batchRatio, 1)} ` +
      `(median of ${s.length} rounds, ${fmt(s[0], 1)}–${fmt(s[s.length - 1], 1)}); ` +
      `${fmt(median(users))} users/s vs ${fmt(median(rps(s7g)))} GET/s`,
  );
  process.exit(0);
}

const httpsTarget = [
  "HTTPS GET throughput ≥ 0.9 × nginx HTTPS",
  `${fmt(httpsRatio, 3)} × nginx (section 6)`,
  verdict(httpsRatio >= 0.9),
];
line("## Targets");
line();
table(
  ["target", "measured", "verdict"],
  tlsOnly ? [httpsTarget] : [
    ["GET throughput ≥ 0.9 × nginx", `${fmt(getRatio, 3)} × nginx`, verdict(getRatio >= 0.9)],
    [
      "p99 ≤ 1 ms at 50 % of callgate's max",
      `${fmt(p99Half, 3)} ms with the CPUs kept awake, ${fmt(p99HalfIdle, 3)} ms with idle CPUs; ` +
        `nginx at the same rate ${fmt(p99HalfNginx, 3)} ms; callgate at 25 % ${fmt(p99Quarter, 3)} ms (section 2)`,
      verdict(p99Half <= 1),
    ],
    ["1M-pair throughput ≥ 0.85 × 1k-pair", `${fmt(scaleRatio, 3)} ×`, verdict(scaleRatio >= 0.85)],
    ["≤ 300 bytes on disk per pair", `${fmt(bytesPerPair, 0)} bytes`, verdict(bytesPerPair <= 300)],
    [
      "durable reservations ≥ 3 × single-fsync rate",
      writesMeasured ? `${fmt(reserveRatio, 2)} × (${fmt(reserveRate)} /s vs ${fmt(fsyncRate)} fsync/s)` : "not measured (endpoint missing)",
      writesMeasured ? verdict(reserveRatio >= 3) : "–",
    ],
    [
      "durable webhook events ≥ 3 × single-fsync rate",
      writesMeasured ? `${fmt(webhookRatio, 2)} × (${fmt(webhookRate)} /s vs ${fmt(fsyncRate)} fsync/s)` : "not measured (endpoint missing)",
      writesMeasured ? verdict(webhookRatio >= 3) : "–",
    ],
    [
      "nothing acknowledged lost (kill -9 after the write load)",
      durability
        ? `${durability.stored_reservations.toLocaleString("en-US")} of ${durability.acked_reservations.toLocaleString("en-US")} reservations, ` +
          `${durability.stored_webhooks.toLocaleString("en-US")} of ${durability.acked_webhooks.toLocaleString("en-US")} webhook events found`
        : "–",
      durability ? verdict(!lost) : "–",
    ],
    ["≥ 20 × Prism's throughput", `${fmt(prismRatio, 1)} ×`, verdict(prismRatio >= 20)],
    httpsTarget,
  ],
);

// Section 6, written last in a full report and alone with `tls`.
const httpsSection = () => {
  line("## 6. HTTPS status GET: callgate vs nginx, same certificate");
  line();
  line(
    `Section 1 over TLS: the same \`wrk -t1 -c${machine.connections} --latency\` runs, URL and ` +
      `body, keep-alive (each connection's handshake happens once, in the ${machine.warmup} s ` +
      `warmup), ${tls?.rounds} rounds of ${tls?.duration} s alternating (shorter and more than ` +
      `elsewhere: the host's speed drifts over tens of seconds, see bench/run.sh), against ` +
      `\`callgate serve --tls-cert … --tls-key …\` and nginx (\`listen … ssl\`, 1 worker) with ` +
      `the same certificate (${tls?.certificate ?? "–"}) and callgate's protocol and cipher ` +
      `lists; both negotiated ${tls?.negotiated ?? "–"} with wrk (checked before measuring).`,
  );
  line();
  table(
    ["", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "non-2xx", "server CPU %", "other CPU %", "stolen %"],
    [
      ["callgate", mmm(rps(s6c)), mmm(lat(s6c, "p50")), mmm(lat(s6c, "p99")), mmm(lat(s6c, "p999")), non2xx(s6c), cpu(s6c), noise(s6c), stolen(s6c)],
      ["nginx", mmm(rps(s6n)), mmm(lat(s6n, "p50")), mmm(lat(s6n, "p99")), mmm(lat(s6n, "p999")), non2xx(s6n), cpu(s6n), noise(s6n), stolen(s6n)],
      ["callgate / nginx", mmm(pairedRatios(rps(s6c), rps(s6n)), 3), "", "", "", "", "", "", ""],
    ],
  );
  line("(The ratio row is per round: callgate's rate over nginx's in the same round.)");
  line();
};

if (tlsOnly) {
  httpsSection();
  fs.mkdirSync(path.dirname(outMd), { recursive: true });
  fs.writeFileSync(outMd, L.join("\n"));
  const ratios = sorted(pairedRatios(rps(s6c), rps(s6n)));
  console.log(
    `HTTPS status GET, callgate / nginx: ${fmt(httpsRatio, 3)} (median of ${ratios.length} ` +
      `rounds, ${fmt(ratios[0], 3)}–${fmt(ratios[ratios.length - 1], 3)}); ` +
      `callgate ${fmt(median(rps(s6c)))} req/s, nginx ${fmt(median(rps(s6n)))} req/s`,
  );
  process.exit(0);
}

line("## 1. Status GET: callgate vs nginx serving the same body");
line();
line(
  `\`wrk -t1 -c${machine.connections} --latency\`, one URL ` +
    `(\`GET …/${body?.path?.split("/").pop()}\` with a bearer key). callgate reads the ` +
    `pair from SQLite, checks the key, validates the number and renders the view on every ` +
    `request; nginx returns the same ${body?.bytes}-byte body as a constant.`,
);
line();
table(
  ["", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "non-2xx", "server CPU %", "other CPU %", "stolen %"],
  [
    ["callgate", mmm(rps(s1c)), mmm(lat(s1c, "p50")), mmm(lat(s1c, "p99")), mmm(lat(s1c, "p999")), non2xx(s1c), cpu(s1c), noise(s1c), stolen(s1c)],
    ["nginx", mmm(rps(s1n)), mmm(lat(s1n, "p50")), mmm(lat(s1n, "p99")), mmm(lat(s1n, "p999")), non2xx(s1n), cpu(s1n), noise(s1n), stolen(s1n)],
    ["callgate / nginx", mmm(pairedRatios(rps(s1c), rps(s1n)), 3), "", "", "", "", "", "", ""],
  ],
);
line("(The ratio row is per round: callgate's rate over nginx's in the same round.)");
line();
const nginxCpu = median(pick(s1n, (r) => r.server_cpu_pct));
if (nginxCpu < 90) {
  line(
    `nginx used ${fmt(nginxCpu, 0)} % of its core: its rate is bounded by wrk, which has the ` +
      `other core to itself, so the hardware limit is higher than the nginx row and the true ` +
      `callgate/nginx ratio lower than shown (about ${fmt(getRatio * nginxCpu / 100, 2)} if ` +
      `nginx scaled linearly to a full core). On 2 cores the load generator cannot get more.`,
  );
  line();
}

const rate = s2c[0]?.rate_target;
const quarterRate = s2qc[0]?.rate_target;
line(
  `## 2. Latency under load: open loop at ${fmt(rate)} req/s (50 % of callgate's median max) ` +
    `and ${fmt(quarterRate)} req/s (25 %)`,
);
line();
line(
  `\`callgate_bench_load\`: ${machine.connections} connections, requests due at a constant rate, ` +
    `latency counted from when each request was due (no coordinated omission). nginx gets the ` +
    `same rate for reference. Each round runs twice: with the CPUs kept awake by a SCHED_IDLE ` +
    `spinner per core (it only gets time nobody else wants; the bare-metal equivalent is ` +
    `disabling C-states), and with the CPUs as they are. At half load the CPUs idle between ` +
    `requests, and on this VM an idle vCPU can take milliseconds to wake: the second pair ` +
    `measures that as much as the servers. The target is judged on the first. A last pair ` +
    `runs at a quarter of the maximum, CPUs as they are.`,
);
line();
const s2row = (name, rs) => [
  name,
  mmm(rps(rs)),
  mmm(lat(rs, "p50"), 3),
  mmm(lat(rs, "p90"), 3),
  mmm(lat(rs, "p99"), 3),
  mmm(lat(rs, "p999"), 3),
  mmm(pick(rs, (r) => r.service_ms?.p99), 3),
  mmm(pick(rs, (r) => r.send_lag_ms?.p99), 3),
  rs.reduce((n, r) => n + (r.unsent ?? 0) + (r.errors ?? 0), 0),
  cpu(rs),
  noise(rs),
  stolen(rs),
];
table(["", "answered req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "p99 sent→answered ms", "p99 sent late by ms", "late/failed", "server CPU %", "other CPU %", "stolen %"], [
  s2row("callgate, 50 %, CPUs awake", s2c),
  s2row("nginx, 50 %, CPUs awake", s2n),
  s2row("callgate, 50 %, idle CPUs", s2ci),
  s2row("nginx, 50 %, idle CPUs", s2ni),
  s2row("callgate, 25 %", s2qc),
  s2row("nginx, 25 %", s2qn),
]);
line(
  `"sent→answered": from the moment a request was written to its answer, the server's part; ` +
    `"sent late by": how long a due request waited to be written (for a free connection, or for ` +
    `the generator itself). ` +
    `"late/failed": requests still waiting to be sent when the run ended, or that failed. ` +
    `"server CPU %": the server's own CPU time in % of one core (its one core is the limit): ` +
    `half of the closed-loop maximum is not half of the core in open loop, where requests ` +
    `arrive one by one and each costs its own wake-up and system calls. "other CPU %" excludes ` +
    `the spinners.`,
);
line();
if (p99Half > 1) {
  line(
    `At 50 % callgate's p99 is over 1 ms; nginx, serving a constant, has p99 ` +
      `${fmt(p99HalfNginx, 3)} ms at the same rate in the same run; at 25 % callgate's p99 is ` +
      `${fmt(p99Quarter, 3)} ms and nginx's ${fmt(median(lat(s2qn, "p99")), 3)} ms. Half of the ` +
      `closed-loop maximum keeps each server's core ${fmt(median(pick(s2c, (r) => r.server_cpu_pct)), 0)} % ` +
      `busy in open loop (callgate; nginx ${fmt(median(pick(s2n, (r) => r.server_cpu_pct)), 0)} %), ` +
      `so when the core stalls for a millisecond (kernel threads or the hypervisor taking it ` +
      `from the server) the queue that builds takes several more to drain. Between runs the ` +
      `two servers' p99 at 50 % each move between about 1 and 3 ms, in either order.`,
  );
  line();
}
line("![latency distribution, callgate vs nginx](bench-latency.png)");
line();

line(`## 3. Scale of data: 1 thousand vs ${fmt(seed1m?.pairs)} pairs`);
line();
line(
  `Same wrk settings; every request asks for a random stored pair (the wrk script picks a ` +
    `random line of a list of ${fmt(seed1m?.pairs - 1)} request paths: every stored pair, resp. ` +
    `each of the 1,000 pairs ~${fmt((seed1m?.pairs - 1) / 1000, 0)} times, so that wrk does the ` +
    `same work for either). Before the rounds each store was read once in list order, so the ` +
    `rounds measure the pair cache warm (it holds every pair with the default \`--cache-mb\`); ` +
    `the third row is a second process on the 1M store with \`--cache-mb 0\`: every read goes ` +
    `to SQLite, what a read the cache misses costs. (Their "server CPU %" is diluted: wrk takes ` +
    `a few seconds to load a list of a million paths, counted in the window while the server ` +
    `waits.) Destinations are random, distinct and possible E.164 numbers (+65 8/9…, ` +
    `+1 NPA-NXX-XXXX); each pair holds a request and, for 80 %, a reply, with their history ` +
    `entries, written through \`SqliteStore::Update\` (seeded in ${fmt(seed1m?.seconds)} s).`,
);
line();
table(
  ["", "req/s", "p50 ms", "p99 ms", "non-2xx", "server CPU %", "other CPU %", "stolen %"],
  [
    ["1k pairs", mmm(rps(s31k)), mmm(lat(s31k, "p50")), mmm(lat(s31k, "p99")), non2xx(s31k), cpu(s31k), noise(s31k), stolen(s31k)],
    [`${fmt(seed1m?.pairs)} pairs`, mmm(rps(s31m)), mmm(lat(s31m, "p50")), mmm(lat(s31m, "p99")), non2xx(s31m), cpu(s31m), noise(s31m), stolen(s31m)],
    [`${fmt(seed1m?.pairs)} pairs, \`--cache-mb 0\``, mmm(rps(s31mn)), mmm(lat(s31mn, "p50")), mmm(lat(s31mn, "p99")), non2xx(s31mn), cpu(s31mn), noise(s31mn), stolen(s31mn)],
    ["1M / 1k", mmm(pairedRatios(rps(s31m), rps(s31k)), 3), "", "", "", "", "", ""],
    ["1M without cache / 1k", mmm(pairedRatios(rps(s31mn), rps(s31k)), 3), "", "", "", "", "", ""],
  ],
);
const mib = (b) => `${fmt(b / 1048576, 1)} MiB`;
table(
  ["store", "database + WAL after checkpoint", "bytes per pair", "callgate RSS (peak)"],
  [
    ["1k pairs", mib(seed1k?.db_bytes + seed1k?.wal_bytes), fmt(seed1k?.bytes_per_pair, 0), mib(memory?.rss_1k_bytes)],
    [
      `${fmt(seed1m?.pairs)} pairs`,
      mib(seed1m?.db_bytes + seed1m?.wal_bytes),
      fmt(seed1m?.bytes_per_pair, 0),
      `${mib(memory?.rss_1m_bytes)} (${mib(memory?.hwm_1m_bytes)})`,
    ],
  ],
);

line("## 4. Durable writes vs the machine's fsync rate");
line();
line(
  `Closed loop, ${machine.connections} connections, against the ${fmt(seed1m?.pairs)}-pair ` +
    `store with the default durability (WAL, synchronous=FULL, group commit). Reservations: ` +
    `\`POST …/callPermissionRequests\` to a distinct destination each. Webhooks: signed Meta ` +
    `call_permission_reply payloads, a distinct wamid and user each. The reference: one thread ` +
    `writing 4 KiB and calling fdatasync in a loop on the same filesystem (the faster of ` +
    `overwriting a preallocated file and appending), measured in each round before the writes.`,
);
line();
const s4row = (name, rs) => [
  name,
  mmm(okps(rs)),
  mmm(lat(rs, "p50"), 2),
  mmm(lat(rs, "p99"), 2),
  statusMix(rs),
  cpu(rs),
  noise(rs),
  stolen(rs),
];
table(["", "acknowledged /s", "p50 ms", "p99 ms", "answers", "server CPU %", "other CPU %", "stolen %"], [
  s4row(`reservations, ${machine.connections} connections`, s4r),
  s4row(`webhook events, ${machine.connections} connections`, s4w),
  s4row("reservations, 1 connection (one commit per write)", s4r1),
]);
table(
  ["fsync reference", `/s (other CPU %: ${noise(s4f)})`],
  [
    ["write + fdatasync, overwrite", mmm(pick(s4f, (r) => r.overwrite_per_s))],
    ["write + fdatasync, append", mmm(pick(s4f, (r) => r.append_per_s))],
    ["reservations / fsync", mmm(pairedRatios(okps(s4r), pick(s4f, (r) => r.fsync_per_s)), 2)],
    ["webhook events / fsync", mmm(pairedRatios(okps(s4w), pick(s4f, (r) => r.fsync_per_s)), 2)],
    [`reservations, ${machine.connections} / 1 connection (group commit gain)`, mmm(pairedRatios(okps(s4r), okps(s4r1)), 2)],
  ],
);
if (durability) {
  line(
    `After the last round callgate was killed with SIGKILL and the store reopened: it holds ` +
      `${durability.stored_reservations.toLocaleString("en-US")} reservation pairs for ` +
      `${durability.acked_reservations.toLocaleString("en-US")} acknowledged reservations and ` +
      `${durability.stored_webhooks.toLocaleString("en-US")} webhook pairs for ` +
      `${durability.acked_webhooks.toLocaleString("en-US")} acknowledged events.`,
  );
  line();
}

line(`## 5. The peer: Stoplight Prism ${machine.prism} mocking the contract`);
line();
line(
  "`prism mock docs/openapi.json` (what a developer would run to emulate this API; it answers " +
    "the status endpoint's example, as 8x8 publishes it), same wrk settings and URL, " +
    "alternating with callgate.",
);
line();
table(
  ["", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors", "server CPU %", "other CPU %", "stolen %"],
  [
    ["callgate", mmm(rps(s5c)), mmm(lat(s5c, "p50")), mmm(lat(s5c, "p99")), non2xx(s5c), s5c.reduce((n, r) => n + Object.values(r.errors ?? {}).reduce((a, b) => a + b, 0), 0), cpu(s5c), noise(s5c), stolen(s5c)],
    ["Prism", mmm(rps(s5p)), mmm(lat(s5p, "p50")), mmm(lat(s5p, "p99")), non2xx(s5p), s5p.reduce((n, r) => n + Object.values(r.errors ?? {}).reduce((a, b) => a + b, 0), 0), cpu(s5p), noise(s5p), stolen(s5p)],
    ["callgate / Prism", mmm(pairedRatios(rps(s5c), rps(s5p)), 1), "", "", "", "", "", "", ""],
  ],
);

httpsSection();

fs.mkdirSync(path.dirname(outMd), { recursive: true });
fs.writeFileSync(outMd, L.join("\n"));

// Chart data: the round with the median throughput (wrk) or median p99 (open loop).
fs.mkdirSync(plotDir, { recursive: true });
const medianRound = (rs, key) => {
  const m = median(rs.map(key));
  return rs.find((r) => key(r) === m);
};
const writeCurve = (file, points) =>
  fs.writeFileSync(path.join(plotDir, file), points.map(([p, ms]) => `${p} ${ms}`).join("\n") + "\n");
const wrkCurve = (rs) => medianRound(rs, (r) => r.rps)?.curve ?? [];
const openCurve = (rs) => {
  const r = medianRound(rs, (x) => x.latency_ms?.p99 ?? 0);
  const file = r && path.join(resultsDir, `${r.name}.curve`);
  if (!file || !fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(" ").map(Number));
};
writeCurve("wrk-callgate.dat", wrkCurve(s1c));
writeCurve("wrk-nginx.dat", wrkCurve(s1n));
writeCurve("open-callgate.dat", openCurve(s2c));
writeCurve("open-nginx.dat", openCurve(s2n));
writeCurve("open-callgate-idle.dat", openCurve(s2ci));
writeCurve("open-nginx-idle.dat", openCurve(s2ni));
writeCurve("open-callgate-quarter.dat", openCurve(s2qc));
writeCurve("open-nginx-quarter.dat", openCurve(s2qn));
fs.writeFileSync(
  path.join(plotDir, "labels.gp"),
  `wrk_title = "Saturation (wrk -c${machine.connections}, closed loop): callgate ${fmt(median(rps(s1c)))} req/s, nginx ${fmt(median(rps(s1n)))} req/s"\n` +
    `open_title = "Open loop at ${fmt(rate)} req/s (50 % of callgate's max) and ${fmt(quarterRate)} (25 %)"\n`,
);
