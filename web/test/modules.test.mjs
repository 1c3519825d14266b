// The client's module layout: lambdacast.js is the entry point apps import, and it loads its parts from
// web/lambdacast/, native ES modules with relative imports only (no bundler, no dependencies).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import * as entry from "../lambdacast.js";

const PARTS = new URL("../lambdacast/", import.meta.url);

/** The public API as it was when the client was one module: apps import these names. */
const NAMED_EXPORTS = [
  "CHANNEL_PATTERN",
  "Client",
  "DEFAULTS",
  "HISTORY_PAGE",
  "LambdacastError",
  "PROTOCOL_VERSION",
  "SeqOrderer",
  "backoffDelay",
  "connect",
  "default",
];

/** The members of the default export (`import lambdacast from "./lambdacast.js"`). */
const DEFAULT_MEMBERS = [
  "Client",
  "DEFAULTS",
  "HISTORY_PAGE",
  "LambdacastError",
  "PROTOCOL_VERSION",
  "SeqOrderer",
  "backoffDelay",
  "connect",
];

async function partFiles() {
  return (await readdir(PARTS)).filter((name) => name.endsWith(".js")).sort();
}

test("the entry point exports the same names as the single-module client did", () => {
  // GIVEN the entry point, imported as apps import it
  // WHEN its named exports are listed
  // THEN they are exactly the public API's names
  assert.deepEqual(Object.keys(entry).sort(), [...NAMED_EXPORTS].sort());
});

test("the default export is frozen and holds the same objects as the named exports", () => {
  // GIVEN the default export
  const lambdacast = entry.default;
  // WHEN its members are compared with the named exports
  // THEN it has exactly the documented members, each the very object exported by name, and cannot change
  assert.deepEqual(Object.keys(lambdacast).sort(), [...DEFAULT_MEMBERS].sort());
  for (const name of DEFAULT_MEMBERS) assert.equal(lambdacast[name], entry[name], name);
  assert.ok(Object.isFrozen(lambdacast));
});

test("every module in web/lambdacast/ loads on its own", async () => {
  // GIVEN the client's parts
  const files = await partFiles();
  assert.ok(files.length >= 10, `expected the client's parts in ${PARTS.pathname}, found ${files}`);
  // WHEN each is imported by itself
  // THEN it loads and exports something (a part nobody can import from is dead code)
  for (const name of files) {
    const part = await import(new URL(name, PARTS));
    assert.ok(Object.keys(part).length > 0, `${name} exports nothing`);
  }
});

test("the entry point re-exports the parts' own objects, not copies", async () => {
  // GIVEN the parts that define the public API
  const client = await import(new URL("client.js", PARTS));
  const orderer = await import(new URL("orderer.js", PARTS));
  const errors = await import(new URL("errors.js", PARTS));
  // WHEN they are compared with what the entry point exports
  // THEN they are the same classes and functions (instanceof works across both import paths)
  assert.equal(entry.Client, client.Client);
  assert.equal(entry.connect, client.connect);
  assert.equal(entry.SeqOrderer, orderer.SeqOrderer);
  assert.equal(entry.LambdacastError, errors.LambdacastError);
});

test("the parts import nothing but each other, by relative paths a browser resolves", async () => {
  // GIVEN the source of every part and of the entry point
  const sources = [[new URL("../lambdacast.js", import.meta.url), "./lambdacast/"]];
  for (const name of await partFiles()) sources.push([new URL(name, PARTS), "./"]);
  for (const [url, prefix] of sources) {
    const text = await readFile(url, "utf8");
    // WHEN its import specifiers are read
    const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\sfrom\s+"([^"]+)"/gm)].map((m) => m[1]);
    // THEN each names a .js file in web/lambdacast/ (no package, no bare name, no Node built-in)
    for (const specifier of specifiers) {
      assert.ok(specifier.startsWith(prefix) && specifier.endsWith(".js"), `${url.pathname}: ${specifier}`);
      assert.ok(!specifier.slice(prefix.length).includes("/"), `${url.pathname}: ${specifier}`);
    }
  }
});

test("each part stays a module of a few hundred lines", async () => {
  // GIVEN the client's parts
  for (const name of await partFiles()) {
    // WHEN its lines are counted
    const lines = (await readFile(new URL(name, PARTS), "utf8")).split("\n").length - 1;
    // THEN it is at most 400 lines (the project's rule: one job per module, a few hundred lines at most)
    assert.ok(lines <= 400, `${name} has ${lines} lines`);
  }
});
