// The demo chat. All user content goes into the page through textContent, never innerHTML.
import lambdacast, { CHANNEL_PATTERN } from "./lambdacast.js";

const FALLBACK_URL = "ws://127.0.0.1:3001"; // `make dev` / `lambdacast local` default port
const PRESET_CHANNELS = ["lobby", "random", "serverless"];
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const ui = {
  badge: $("state-badge"),
  detail: $("status-detail"),
  endpoint: $("endpoint"),
  connectionId: $("connection-id"),
  channelList: $("channel-list"),
  channelForm: $("channel-form"),
  channelInput: $("channel-input"),
  channelError: $("channel-error"),
  channelName: $("channel-name"),
  name: $("name-input"),
  messages: $("messages"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send"),
  sendError: $("send-error"),
};

const STATE_LABELS = { connecting: "connecting", open: "live", reconnecting: "reconnecting", closed: "offline" };

/** The WebSocket URL: ?ws=, else web/config.json (written by `make web-config`), else the local emulator. */
async function resolveUrl() {
  const fromQuery = params.get("ws");
  if (fromQuery) return { url: fromQuery, source: "?ws=" };
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      const url = config.webSocketUrl ?? config.WebSocketURL;
      if (typeof url === "string" && url) return { url, source: "config.json" };
    }
  } catch {
    // no config.json: fall through to the local default
  }
  return { url: FALLBACK_URL, source: "default (lambdacast local)" };
}

/** localStorage, when the browser allows it (private modes and sandboxed frames may not). */
function remembered(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // not remembered; the name still works for this visit
  }
}

function randomName() {
  const animals = ["otter", "lynx", "heron", "gecko", "puffin", "marten", "ibis", "newt"];
  return `${animals[Math.floor(Math.random() * animals.length)]}-${Math.floor(100 + Math.random() * 900)}`;
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setState(state, info = {}) {
  document.body.dataset.state = state;
  ui.badge.textContent = STATE_LABELS[state] ?? state;
  ui.badge.dataset.state = state;
  ui.send.disabled = state === "closed";
  if (state === "open") {
    ui.detail.textContent = "";
  } else if (state === "closed") {
    ui.detail.textContent = info.error ? `Stopped: ${info.error.message}` : "Closed.";
  } else if (info.error) {
    const wait =
      info.delay !== undefined ? ` Retrying in ${(info.delay / 1000).toFixed(1)} s (attempt ${info.attempt}).` : "";
    ui.detail.textContent = `${info.error.message}.${wait}`;
  }
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function addSystemLine(text, kind = "info") {
  const item = el("li", `system ${kind}`, text);
  ui.messages.append(item);
  scrollToEnd();
}

function addMessage(message, ownConnectionId) {
  const data = message.data;
  const isChat = data !== null && typeof data === "object" && typeof data.text === "string";
  const name = isChat && typeof data.name === "string" && data.name ? data.name : (message.from?.userId ?? "anonymous");
  const text = isChat ? data.text : JSON.stringify(data);
  const mine = message.from?.connectionId && message.from.connectionId === ownConnectionId;

  const item = el("li", mine ? "message mine" : "message");
  item.dataset.seq = String(message.seq);
  const avatar = el("span", "avatar", name.slice(0, 1).toUpperCase());
  avatar.style.setProperty("--hue", String(hue(name)));
  avatar.setAttribute("aria-hidden", "true");
  const body = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(
    el("span", "author", name),
    el(
      "time",
      "time",
      new Date(message.ts || Date.now()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    ),
    el("span", "seq", `#${message.seq}`),
  );
  body.append(meta, el("p", "text", text));
  item.append(avatar, body);
  ui.messages.append(item);
  scrollToEnd();
}

function renderChannels(active) {
  ui.channelList.replaceChildren();
  const names = [...new Set([...PRESET_CHANNELS, active])];
  for (const name of names) {
    const button = el("button", name === active ? "channel active" : "channel", `# ${name}`);
    button.type = "button";
    button.dataset.channel = name;
    if (name === active) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => join(name));
    const item = el("li");
    item.append(button);
    ui.channelList.append(item);
  }
}

let client = null;
let subscription = null;
let channel = params.get("channel") || "lobby";

function join(name) {
  ui.channelError.textContent = "";
  if (!CHANNEL_PATTERN.test(name)) {
    ui.channelError.textContent = "Use 1–128 characters: letters, digits and _ - = @ , . ; :";
    return;
  }
  subscription?.unsubscribe();
  channel = name;
  ui.channelName.textContent = name;
  ui.messages.replaceChildren();
  renderChannels(name);
  const url = new URL(location.href);
  url.searchParams.set("channel", name);
  history.replaceState(null, "", url);
  if (!client || client.state === "closed") return;
  subscription = client.subscribe(name, (message) => addMessage(message, client.connectionId));
  subscription.ready.then(
    () => addSystemLine(`You joined #${name}.`),
    (err) => err.fromServer && addSystemLine(`Could not join #${name}: ${err.code} — ${err.message}`, "error"),
  );
}

async function main() {
  ui.name.value = params.get("name") || remembered("lambdacast.name") || randomName();
  ui.name.addEventListener("change", () => remember("lambdacast.name", ui.name.value.trim()));
  renderChannels(channel);
  ui.channelName.textContent = channel;

  const { url, source } = await resolveUrl();
  ui.endpoint.textContent = url;
  ui.endpoint.title = `from ${source}`;

  const attempts = Number.parseInt(params.get("attempts") ?? "", 10);
  try {
    client = lambdacast.connect(url, Number.isFinite(attempts) && attempts > 0 ? { maxConnectAttempts: attempts } : {});
  } catch (err) {
    setState("closed", { error: err });
    return;
  }
  let offline = false;
  window.lambdacastDemo = { client }; // for the console (and the browser tests)
  client.on("state", (state, info) => {
    setState(state, info);
    if (state === "open") ui.connectionId.textContent = client.connectionId ?? "—";
    if (state === "reconnecting" && !offline) {
      offline = true;
      addSystemLine("Connection lost; reconnecting…", "warn");
    }
    if (state === "open" && offline) {
      offline = false;
      addSystemLine("Back online: resubscribed.");
    }
  });
  client.on("gap", (gap) => {
    if (gap.channel !== channel) return;
    const text = gap.reset
      ? "The channel started over (the server was reset)."
      : `${gap.to - gap.from + 1} message${gap.to === gap.from ? "" : "s"} published while you were away could not be shown.`;
    addSystemLine(text, "warn");
  });
  join(channel);

  ui.channelForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = ui.channelInput.value.trim();
    if (!name) return;
    ui.channelInput.value = "";
    join(name);
  });

  ui.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = ui.input.value;
    if (!text.trim() || !client) return;
    ui.sendError.textContent = "";
    ui.input.value = "";
    const name = ui.name.value.trim() || "anonymous";
    try {
      await client.publish(channel, { name, text }, { echo: true });
    } catch (err) {
      ui.sendError.textContent = `Not sent (${err.code}): ${err.message}`;
      ui.sendError.dataset.code = err.code;
      if (!ui.input.value) ui.input.value = text.length <= 2000 ? text : "";
    }
  });
  ui.input.focus();
}

main();
