// The demo chat. All user content (messages, display names, member lists) goes into the page through
// textContent, never innerHTML. A message's author is who the SERVER says sent it (`from.userId`, named
// with the display name the server vouches for: the token's `name`, seen in presence lists), never
// anything inside `data`, which any client can write.
import lambdacast, { CHANNEL_PATTERN } from "./lambdacast.js";

const FALLBACK_URL = "ws://127.0.0.1:3001/dev"; // `make dev` / `lambdacast local`: default port, the stage "dev"
const PRESET_CHANNELS = ["lobby", "random", "presence-lobby"];
const HISTORY_ON_JOIN = 50; // earlier messages shown when joining a channel
const TOKEN_REFRESH_MARGIN_MS = 60_000; // mint a new dev token when the current one expires sooner
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

const ui = {
  badge: $("state-badge"),
  detail: $("status-detail"),
  endpoint: $("endpoint"),
  endpointWarning: $("endpoint-warning"),
  connectionId: $("connection-id"),
  channelList: $("channel-list"),
  channelForm: $("channel-form"),
  channelInput: $("channel-input"),
  channelError: $("channel-error"),
  channelName: $("channel-name"),
  name: $("name-input"),
  signInForm: $("sign-in-form"),
  signIn: $("sign-in"),
  signOut: $("sign-out"),
  authStatus: $("auth-status"),
  authError: $("auth-error"),
  userId: $("user-id"),
  members: $("members"),
  memberCount: $("member-count"),
  memberPanel: $("member-panel"),
  memberPanelCount: $("member-panel-count"),
  memberList: $("member-list"),
  messages: $("messages"),
  composer: $("composer"),
  input: $("message-input"),
  send: $("send"),
  sendError: $("send-error"),
};

const STATE_LABELS = { connecting: "connecting", open: "live", reconnecting: "reconnecting", closed: "offline" };

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** web/config.json's URL (written by `make web-config`; `lambdacast local` serves its own), if any. */
async function configuredUrl() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      const url = config.webSocketUrl ?? config.WebSocketURL;
      if (typeof url === "string" && url) return url;
    }
  } catch {
    // no config.json
  }
  return null;
}

/** ?ws= may point at this machine or at the configured stack, never elsewhere: a link must not aim the page
 * (and its sign-in) at someone else's server. */
function acceptableOverride(url, configured) {
  if (url === configured) return true;
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "ws:" || parsed.protocol === "wss:") && LOCAL_HOSTS.has(parsed.hostname);
  } catch {
    return false;
  }
}

/** The WebSocket URL: ?ws= (local or the configured one), else config.json, else the local emulator. */
async function resolveUrl() {
  const configured = await configuredUrl();
  const fromQuery = params.get("ws");
  let refused = null;
  if (fromQuery && acceptableOverride(fromQuery, configured)) return { url: fromQuery, source: "?ws=", refused };
  if (fromQuery) refused = fromQuery;
  if (configured) return { url: configured, source: "config.json", refused };
  return { url: FALLBACK_URL, source: "default (lambdacast local)", refused };
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

/** userId -> the display name the server vouches for (presence member info, our own token). */
const vouchedNames = new Map();

function vouch(userId, name) {
  if (typeof userId === "string" && userId && typeof name === "string" && name) vouchedNames.set(userId, name);
}

/** Who sent a message, as the server set it: the vouched name, else the user id, else "anonymous". */
function sender(message) {
  const userId = typeof message.from?.userId === "string" && message.from.userId ? message.from.userId : null;
  return { userId, name: userId === null ? "anonymous" : (vouchedNames.get(userId) ?? userId) };
}

/** msgIds of this tab's publishes: its own messages, whatever the stack's SenderIdentity shows in `from`. */
const ownMsgIds = new Set();

function newMsgId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function addMessage(message) {
  const data = message.data;
  const isChat = data !== null && typeof data === "object" && typeof data.text === "string";
  const { userId, name } = sender(message);
  const text = isChat ? data.text : JSON.stringify(data);
  const ownConnection = message.from?.connectionId && message.from.connectionId === client?.connectionId;
  const mine = ownMsgIds.has(message.msgId) || ownConnection || (userId !== null && userId === client?.userId);

  const item = el("li", mine ? "message mine" : "message");
  item.dataset.seq = String(message.seq);
  if (userId !== null) item.dataset.userId = userId;
  const avatar = el("span", "avatar", name.slice(0, 1).toUpperCase());
  avatar.style.setProperty("--hue", String(hue(name)));
  avatar.setAttribute("aria-hidden", "true");
  const body = el("div", "bubble");
  const meta = el("div", "meta");
  const author = el("span", "author", name);
  author.title = userId === null ? "not signed in" : `user id ${userId} (set by the server)`;
  meta.append(
    author,
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

function isReserved(name) {
  return name.startsWith("private-") || name.startsWith("presence-");
}

function showMembers(members) {
  const visible = members !== null;
  ui.members.hidden = !visible;
  ui.memberPanel.hidden = !visible;
  if (!visible) return;
  ui.memberCount.textContent = String(members.length);
  ui.memberPanelCount.textContent = String(members.length);
  ui.memberList.replaceChildren();
  for (const member of members) {
    vouch(member.userId, member.info?.name);
    const name = typeof member.info?.name === "string" && member.info.name ? member.info.name : member.userId;
    const item = el("li", "member");
    item.dataset.userId = member.userId;
    const avatar = el("span", "avatar", name.slice(0, 1).toUpperCase());
    avatar.style.setProperty("--hue", String(hue(name)));
    avatar.setAttribute("aria-hidden", "true");
    item.append(avatar, el("span", "member-name", name));
    if (client && member.userId === client.userId) item.append(el("span", "you", "(you)"));
    ui.memberList.append(item);
  }
}

// ---- sign-in with the local dev token minter (`lambdacast local --dev-tokens` only) ------------------

/** {token, userId, name, expiresAt (epoch s)} while signed in. Kept in memory only. */
let auth = null;
let wsUrl = FALLBACK_URL;

class DevTokensUnavailable extends Error {}

/** POST <http(s) origin of the WebSocket URL>/_lambdacast/dev-token {name} -> {token, userId, expiresAt}. */
async function mintDevToken(name) {
  const endpoint = new URL(wsUrl);
  endpoint.protocol = endpoint.protocol === "wss:" ? "https:" : "http:";
  let response;
  try {
    response = await fetch(`${endpoint.origin}/_lambdacast/dev-token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
  } catch (err) {
    throw new DevTokensUnavailable(
      `no dev token minter answered this page at ${endpoint.origin} (${err.message}); it answers only the page lambdacast local serves`,
    );
  }
  if (response.status === 404) throw new DevTokensUnavailable(`${endpoint.origin} has no dev token minter`);
  if (!response.ok) throw new Error(`the dev token minter answered HTTP ${response.status}`);
  const body = await response.json();
  if (typeof body.token !== "string" || typeof body.userId !== "string") {
    throw new Error("the dev token minter sent no token");
  }
  vouch(body.userId, name);
  const channels = Array.isArray(body.channels) ? body.channels.filter((c) => typeof c === "string") : [];
  return { token: body.token, userId: body.userId, name, channels, expiresAt: Number(body.expiresAt) || 0 };
}

/** The client's getToken: runs before every (re)connect, so a token about to expire is replaced first. */
async function currentToken() {
  if (auth === null) return null;
  if (auth.expiresAt * 1000 - Date.now() < TOKEN_REFRESH_MARGIN_MS) {
    try {
      auth = await mintDevToken(auth.name);
    } catch (err) {
      auth = null;
      renderAuth();
      ui.authError.textContent = `Signed out: the token expired and could not be renewed (${err.message}).`;
      return null;
    }
  }
  return auth.token;
}

function renderAuth() {
  const signedIn = auth !== null;
  ui.signIn.hidden = signedIn;
  ui.signOut.hidden = !signedIn;
  ui.name.disabled = signedIn;
  ui.authStatus.dataset.signedIn = String(signedIn);
  if (signedIn) {
    const granted = auth.channels.length ? auth.channels.join(", ") : "no private- or presence- channel";
    ui.authStatus.replaceChildren(
      "Signed in as ",
      el("strong", "", auth.name),
      " (",
      el("code", "", auth.userId),
      "). Your token opens: ",
      el("code", "granted", granted),
      ".",
    );
  } else {
    ui.authStatus.replaceChildren(
      "Not signed in: public channels only. ",
      el("code", "", "private-"),
      " and ",
      el("code", "", "presence-"),
      " channels need sign-in.",
    );
  }
}

/** Reconnect under the new identity (getToken supplies it) and rejoin the channel as that user. */
function switchIdentity() {
  renderAuth();
  if (!client || client.state === "closed") return;
  client.reconnect();
  join(channel);
}

async function signIn() {
  ui.authError.textContent = "";
  const name = ui.name.value.trim() || randomName();
  ui.name.value = name;
  remember("lambdacast.name", name);
  ui.signIn.disabled = true;
  try {
    auth = await mintDevToken(name);
  } catch (err) {
    ui.authError.textContent =
      err instanceof DevTokensUnavailable
        ? `Sign-in here is local-only: it uses the dev token minter of \`lambdacast local --dev-tokens\`, and ${err.message}. A deployed site signs users in through its own backend (docs/auth.md).`
        : `Could not sign in: ${err.message}`;
    return;
  } finally {
    ui.signIn.disabled = false;
  }
  switchIdentity();
}

function signOut() {
  ui.authError.textContent = "";
  auth = null;
  switchIdentity();
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
  showMembers(null);
  if (isReserved(name) && auth === null) {
    addSystemLine(`#${name} is for signed-in users: private- and presence- channels need sign-in.`, "warn");
  }
  const options = { rewind: HISTORY_ON_JOIN };
  if (name.startsWith("presence-")) options.onPresence = (members) => showMembers(members);
  const current = client.subscribe(name, (message) => addMessage(message), options);
  subscription = current;
  current.ready.then(
    () => addSystemLine(`You joined #${name}.`),
    (err) => {
      if (!err.fromServer || subscription !== current) return;
      addSystemLine(`Could not join #${name}: ${err.code} — ${err.message}`, "error");
      showMembers(null);
    },
  );
}

async function main() {
  ui.name.value = params.get("name") || remembered("lambdacast.name") || randomName();
  ui.name.addEventListener("change", () => remember("lambdacast.name", ui.name.value.trim()));
  renderChannels(channel);
  ui.channelName.textContent = channel;

  const { url, source, refused } = await resolveUrl();
  wsUrl = url;
  ui.endpoint.textContent = url;
  ui.endpoint.title = `from ${source}`;
  if (refused !== null) {
    ui.endpointWarning.textContent = `Ignored ?ws=${refused}: this page connects only to this machine or to its configured server.`;
  }

  const attempts = Number.parseInt(params.get("attempts") ?? "", 10);
  try {
    const options = { getToken: currentToken };
    if (Number.isFinite(attempts) && attempts > 0) options.maxConnectAttempts = attempts;
    client = lambdacast.connect(url, options);
  } catch (err) {
    setState("closed", { error: err });
    return;
  }
  let offline = false;
  window.lambdacastDemo = { client }; // for the console (and the browser tests)
  client.on("state", (state, info) => {
    setState(state, info);
    if (state === "open") {
      ui.connectionId.textContent = client.connectionId ?? "—";
      ui.userId.textContent = client.userId ?? "anonymous";
    }
    if (state === "reconnecting" && info.error?.code === "reconnect_requested") return;
    // Refused again and again while signed in: the token may be stale (e.g. a restarted emulator has a
    // new secret), so the next attempt mints a fresh one.
    if (state === "reconnecting" && auth !== null && info.attempt >= 3) auth.expiresAt = 0;
    if (state === "reconnecting" && !offline) {
      offline = true;
      addSystemLine("Connection lost; reconnecting…", "warn");
    }
    if (state === "open" && offline) {
      offline = false;
      addSystemLine("Back online: resubscribed, missed messages recovered.");
    }
  });
  client.on("member_joined", ({ member }) => vouch(member?.userId, member?.info?.name));
  client.on("gap", (gap) => {
    if (gap.channel !== channel) return;
    const count = gap.to - gap.from + 1;
    addSystemLine(`${count} message${count === 1 ? "" : "s"} could not be shown.`, "warn");
  });
  client.on("reset", (reset) => {
    if (reset.channel === channel) addSystemLine("The channel started over (its server was reset).", "warn");
  });
  join(channel);
  renderAuth();
  ui.signInForm.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn();
  });
  ui.signOut.addEventListener("click", signOut);

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
    try {
      // No name in the message: the server says who sent it (from.userId). Our own msgId is known
      // before the echo arrives (it may come before the ack).
      const msgId = newMsgId();
      ownMsgIds.add(msgId);
      await client.publish(channel, { text }, { echo: true, msgId });
    } catch (err) {
      ui.sendError.textContent = `Not sent (${err.code}): ${err.message}`;
      ui.sendError.dataset.code = err.code;
      if (!ui.input.value) ui.input.value = text.length <= 2000 ? text : "";
    }
  });
  ui.input.focus();
}

main();
