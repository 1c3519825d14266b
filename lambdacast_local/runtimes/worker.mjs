// One Lambda execution environment for Node.js: loads a handler once, then serves invocations.
//
// Run as `node worker.mjs '<json config>'`. It speaks the worker protocol of protocol.py (newline-delimited
// JSON on the process's stdin and stdout, the same protocol as worker.py); the handler's console output
// goes to stderr, so it can never corrupt that channel. No dependencies: Node's standard library only.
import { createRequire, register } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv[2]);

// --- The IPC channel: the original stdout, kept for the protocol; everything else printed goes to stderr.
const ipcWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
const send = (message) => ipcWrite(JSON.stringify(message) + "\n");
// Exit once what the handler printed is out: a big write to a full pipe completes asynchronously, and
// process.exit() would drop it.
const exitAfterOutput = (code) => process.stderr.write("", () => process.exit(code));

// --- AWS hostnames the emulator serves (this API's execute-api host, dynamodb.<region>.amazonaws.com...):
// TLS connections to exactly those host:port pairs go to its local listeners, the real hostname kept for
// SNI and certificate checks (NODE_EXTRA_CA_CERTS trusts the emulator's CA). Every client (the SDK's
// https agent, fetch) connects through tls.connect, looked up on the module at each call.
function redirectHosts(hosts) {
  if (Object.keys(hosts).length === 0) return;
  const connect = tls.connect;
  tls.connect = function (...args) {
    const options = args[0];
    if (options !== null && typeof options === "object" && typeof options.host === "string" && !options.socket) {
      const port = hosts[`${options.host.toLowerCase()}:${options.port ?? 443}`];
      if (port !== undefined) {
        args[0] = { ...options, host: "127.0.0.1", port, servername: options.servername || options.host };
      }
    } else if ((typeof options === "number" || typeof options === "string") && typeof args[1] === "string") {
      const port = hosts[`${args[1].toLowerCase()}:${options}`];
      if (port !== undefined) {
        const rest = typeof args[2] === "object" && args[2] !== null ? args[2] : {};
        const callback = args.find((arg) => typeof arg === "function");
        args = [{ ...rest, host: "127.0.0.1", port, servername: rest.servername || args[1] }];
        if (callback) args.push(callback);
      }
    }
    return connect.apply(this, args);
  };
}

// --- Module resolution as in Lambda's Node.js 18+ runtimes: CommonJS searches NODE_PATH (set by the
// emulator: layers' nodejs/node_modules, then the AWS SDK v3), and ES module imports of packages that are
// not in the function's own node_modules fall back to the same folders.
function esmFallback(folders) {
  if (folders.length === 0) return;
  const hooks = `
    let parents = [];
    export function initialize(data) { parents = data.parents; }
    export async function resolve(specifier, context, next) {
      try {
        return await next(specifier, context);
      } catch (error) {
        const bare = !/^(\\.|\\/|[a-zA-Z][a-zA-Z+.-]*:)/.test(specifier);
        if (error?.code !== "ERR_MODULE_NOT_FOUND" || !bare) throw error;
        for (const parentURL of parents) {
          try { return await next(specifier, { ...context, parentURL }); } catch {}
        }
        throw error;
      }
    }`;
  const parents = folders.map((folder) => pathToFileURL(path.join(folder, "lambdacast-resolve.mjs")).href);
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { parents } });
}

function typeModule(file) {
  for (let folder = path.dirname(file); ; folder = path.dirname(folder)) {
    const manifest = path.join(folder, "package.json");
    if (existsSync(manifest)) {
      try {
        return JSON.parse(readFileSync(manifest, "utf8")).type === "module";
      } catch {
        return false;
      }
    }
    if (path.dirname(folder) === folder) return false;
  }
}

class LambdaError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

// "src/handlers/chat.on.message" -> file src/handlers/chat, property path on.message (Lambda's rule: the
// module name ends at the first dot after the last slash).
async function loadHandler(handlerSetting, codeDir) {
  const slash = handlerSetting.lastIndexOf("/");
  const base = handlerSetting.slice(slash + 1);
  const dot = base.indexOf(".");
  if (dot <= 0 || dot === base.length - 1) {
    throw new LambdaError("Runtime.MalformedHandlerName", `Bad handler ${handlerSetting}`);
  }
  const moduleName = handlerSetting.slice(0, slash + 1) + base.slice(0, dot);
  const propertyPath = base.slice(dot + 1);
  const file = path.resolve(codeDir, moduleName);
  const require = createRequire(path.join(codeDir, "index.js"));
  const importFile = async (target) => {
    esmFallback(config.esm_paths ?? []); // only for ES modules: starting the hooks thread costs ~30 ms
    return await import(pathToFileURL(target).href);
  };
  let loaded;
  try {
    if (existsSync(file + ".js")) {
      loaded = typeModule(file + ".js") ? await importFile(file + ".js") : require(file + ".js");
    } else if (existsSync(file + ".mjs")) {
      loaded = await importFile(file + ".mjs");
    } else if (existsSync(file + ".cjs")) {
      loaded = require(file + ".cjs");
    } else if (existsSync(file)) {
      loaded = require(file);
    } else {
      throw new LambdaError("Runtime.ImportModuleError", `Error: Cannot find module '${moduleName}'`);
    }
  } catch (error) {
    if (error instanceof LambdaError) throw error;
    const type = error instanceof SyntaxError ? "Runtime.UserCodeSyntaxError" : "Runtime.ImportModuleError";
    const wrapped = new LambdaError(type, `${error?.name ?? "Error"}: ${error?.message ?? error}`);
    wrapped.stack = error?.stack ?? wrapped.stack;
    throw wrapped;
  }
  const handler = propertyPath.split(".").reduce((value, key) => value?.[key], loaded);
  if (typeof handler !== "function") {
    throw new LambdaError(
      "Runtime.HandlerNotFound",
      `${moduleName}.${propertyPath} is undefined or not exported`,
    );
  }
  return handler;
}

function failure(error) {
  if (error instanceof Error) {
    const stack = typeof error.stack === "string" ? error.stack.split("\n").slice(1).map((l) => l.trim()) : [];
    return { errorType: error.name, errorMessage: error.message, stackTrace: stack };
  }
  return { errorType: typeof error, errorMessage: String(error), stackTrace: [] };
}

// --- The context object (own properties, as on Lambda: JSON.stringify(context) shows them).
const base = {
  functionName: config.function_name,
  functionVersion: "$LATEST",
  invokedFunctionArn: config.function_arn,
  memoryLimitInMB: String(config.memory_mb),
  logGroupName: `/aws/lambda/${config.function_name}`,
  logStreamName: config.log_stream_name,
};

class Context {
  #deadline;
  #done;
  constructor(requestId, deadline, done) {
    Object.assign(this, base);
    this.awsRequestId = requestId;
    this.callbackWaitsForEmptyEventLoop = true;
    this.#deadline = deadline;
    this.#done = done;
  }
  getRemainingTimeInMillis() {
    return Math.max(0, this.#deadline - Date.now());
  }
  // The legacy completion methods Lambda's Node.js runtimes still offer.
  done(error, result) {
    this.#done(error, result);
  }
  succeed(result) {
    this.#done(null, result);
  }
  fail(error) {
    this.#done(error ?? "handled", undefined);
  }
}

// --- "Wait for an empty event loop": what Lambda does after a callback (unless
// context.callbackWaitsForEmptyEventLoop is false) and after a non-async handler that never calls back.
// The baseline is what keeps this process alive before any user code ran (the stdin pipe).
let baseline = new Map();
const countResources = () => {
  const counts = new Map();
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
};
function eventLoopEmptied() {
  return new Promise((resolve) => {
    const check = () => {
      for (const [name, count] of countResources()) {
        if (count > (baseline.get(name) ?? 0)) {
          setTimeout(check, 1).unref();
          return;
        }
      }
      resolve();
    };
    setImmediate(check);
  });
}

let current = null; // the invocation running now: {settle}

function invoke(handler, request) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome) => {
      if (!settled) {
        settled = true;
        resolve(outcome);
      }
    };
    let context;
    const callback = (error, result) => {
      const outcome = error !== null && error !== undefined ? { error } : { result };
      if (context.callbackWaitsForEmptyEventLoop) eventLoopEmptied().then(() => settle(outcome));
      else settle(outcome);
    };
    context = new Context(request.request_id, request.deadline_ms, callback);
    current = { settle };
    let returned;
    try {
      returned = handler(request.event, context, callback);
    } catch (error) {
      settle({ error });
      return;
    }
    if (returned !== null && typeof returned === "object" && typeof returned.then === "function") {
      returned.then(
        (result) => settle({ result }),
        (error) => settle({ error }),
      );
    } else {
      // Not async: done by its callback, or else when the event loop is empty (its return value ignored).
      eventLoopEmptied().then(() => settle({ result: null }));
    }
  });
}

function replyLine(outcome) {
  if (!("error" in outcome)) {
    try {
      return `{"ok":true,"result":${JSON.stringify(outcome.result) ?? "null"}}\n`;
    } catch (error) {
      outcome = { error: new LambdaError("Runtime.MarshalError", String(error?.message ?? error)) };
    }
  }
  return JSON.stringify({ ok: false, ...failure(outcome.error) }) + "\n";
}

let exiting = false;
function fatal(type, error) {
  if (exiting) return; // one report: the process is already on its way out
  exiting = true;
  console.error(error);
  if (current !== null) {
    const description = failure(error);
    ipcWrite(
      JSON.stringify({ ok: false, ...description, errorType: type ?? description.errorType, fatal: true }) + "\n",
    );
  }
  exitAfterOutput(129);
}

process.on("uncaughtException", (error) => fatal(null, error));
process.on("unhandledRejection", (reason) =>
  fatal("Runtime.UnhandledPromiseRejection", reason instanceof Error ? reason : new Error(String(reason))),
);

async function main() {
  process.chdir(config.code_dir);
  let pending = "";
  const lines = [];
  let wake = null;
  let ended = false;
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    const parts = (pending + chunk).split("\n");
    pending = parts.pop();
    for (const line of parts) if (line) lines.push(line);
    if (wake !== null && lines.length > 0) wake();
  });
  process.stdin.on("end", () => {
    ended = true;
    if (wake !== null) wake();
  });
  baseline = countResources();
  redirectHosts(config.hosts ?? {});

  const started = performance.now();
  let handler;
  try {
    handler = await loadHandler(config.handler, config.code_dir);
  } catch (error) {
    console.error(error);
    send({ type: "init_error", ...failure(error) });
    exitAfterOutput(1);
    return;
  }
  send({ type: "ready", init_ms: performance.now() - started });

  for (;;) {
    while (lines.length === 0 && !ended) await new Promise((resolve) => (wake = resolve));
    wake = null;
    if (lines.length === 0) break;
    const outcome = await invoke(handler, JSON.parse(lines.shift()));
    current = null;
    ipcWrite(replyLine(outcome));
  }
  exitAfterOutput(0);
}

await main();
