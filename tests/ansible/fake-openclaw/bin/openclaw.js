#!/usr/bin/env node
// Stand-in for the OpenClaw CLI: `--version`, and `gateway --port N`, which serves the two
// unauthenticated probes of the real gateway (/healthz, /readyz) and checks what the
// playbook must have provided: a readable openclaw.json and the gateway token.
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");

const pkg = require(path.join(__dirname, "..", "package.json"));
const args = process.argv.slice(2);
if (args[0] === "--version") {
  console.log(pkg.version);
  process.exit(0);
}
if (args[0] !== "gateway") {
  console.error(`fake openclaw: unsupported arguments: ${args.join(" ")}`);
  process.exit(64);
}
const stateDir = process.env.OPENCLAW_STATE_DIR || path.join(process.env.HOME, ".openclaw");
const config = JSON.parse(fs.readFileSync(path.join(stateDir, "openclaw.json"), "utf8"));
if (!process.env.OPENCLAW_GATEWAY_TOKEN) {
  console.error("fake openclaw: refusing to bind gateway without auth");
  process.exit(1);
}
const portFlag = args.indexOf("--port");
const port = Number(portFlag >= 0 ? args[portFlag + 1] : config.gateway.port);
http
  .createServer((req, res) => {
    const ok = req.url === "/healthz" || req.url === "/readyz";
    res.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(ok ? { ok: true, version: pkg.version, mode: config.gateway.mode } : {}));
  })
  .listen(port, "127.0.0.1", () => console.log(`fake openclaw gateway on 127.0.0.1:${port}`));
