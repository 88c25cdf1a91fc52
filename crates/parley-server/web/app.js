// The page: the login form, what the server says and what the user types,
// the file panel's token, leaving, closing the server, and reconnecting when
// the server goes away. The conversations and their rendering are in
// conversations.js, IRC in irc.js, the file store in files.js, DOM building
// in view.js.

import { Session, fold, nickOf, socketUrl } from "./irc.js";
import { FilePanel } from "./files.js";
import {
  SERVER_KEY, activate, addMessage, chat, conv, info, isChannel, isMe, renderConvList, renderMembers, sortByTime,
} from "./conversations.js";

const $ = (id) => document.getElementById(id);

/** Messages asked for when joining a channel whose history we may read. */
const HISTORY_LINES = 50;
/** Reconnection waits, in seconds; the last repeats. */
const BACKOFF = [1, 2, 4, 8, 15, 30];
/** The PING token that marks the end of the registration burst. */
const READY_TOKEN = "parley-web-ready";

const state = {
  session: null,
  creds: null, // {nick, account, password} of the current login
  names: new Map(), // channel key -> members gathered from 353 until 366
  joinedBefore: [], // channels to rejoin after a reconnect
  attempt: 0,
  retryTimer: null,
  countdownTimer: null,
  leaving: false,
  shutdownNotice: "",
  token: null,
  tokenWaiters: [],
  oper: null, // {reason} while the close-server dialog waits on OPER
  pendingJoin: null, // a channel the user asked to join, to open when joined
  everIn: false, // this login reached the chat once: failures now mean retry
  loggedInAs: null, // the account of this connection (900)
};

// ---------- the session's events ----------

const handler = {
  registered(nick) {
    chat.nick = nick;
    state.everIn = true;
    // Offered again next time (only the name: never a password).
    try {
      localStorage.setItem("parley.nick", state.creds.nick);
    } catch {
      /* storage may be off */
    }
    state.attempt = 0;
    state.token = null;
    if (!state.creds.account) $("me").textContent = nick;
    hideBanner();
    // Everything the server sends on registration (the auto-joins too)
    // comes before the answer to this.
    state.session.send("PING", READY_TOKEN);
  },

  nickRejected(code, nick, text) {
    state.session = null;
    const why =
      code === "433"
        ? `The name “${nick}” is taken: someone here is using it. Please choose another.`
        : `The name “${nick}” can't be used: ${text.replace(/^Erroneous nickname:?\s*/i, "")}. Please choose another.`;
    showLogin(why);
    $("nick").select();
  },

  loginFailed(text) {
    state.session = null;
    showLogin(`Could not log in: ${text}`);
    $("account-box").open = true;
    $("password").select();
  },

  batch(type, params, msgs) {
    if (type === "draft/chathistory-targets") {
      // `CHATHISTORY TARGETS <target> <time>`: ask for each conversation's latest lines.
      for (const m of msgs) {
        const target = m.params[1];
        if (!target || isChannel(target)) continue;
        conv(target, "query");
        state.session.send("CHATHISTORY", "LATEST", target, "*", String(HISTORY_LINES));
      }
      return;
    }
    const history = type === "chathistory";
    for (const m of msgs) onMessage(m, history);
    // Live lines may have come in while the history was on its way.
    const c = history && params[0] ? chat.convs.get(fold(params[0])) : null;
    if (c) sortByTime(c);
  },

  message(msg) {
    onMessage(msg, false);
  },

  closed(info) {
    const wasRegistered = info.registered;
    state.session = null;
    state.token = null;
    for (const w of state.tokenWaiters.splice(0)) w.reject(new Error("disconnected"));
    rememberJoined();
    if (state.leaving) {
      state.leaving = false;
      showLogin("You left the chat. Join again whenever you like.");
      return;
    }
    const shutdown = /Server shutting down: closed by (.*)$/.exec(state.shutdownNotice || info.error || "");
    if (shutdown && !/^signal /.test(shutdown[1])) {
      showClosed(shutdown[1]);
      return;
    }
    if (!wasRegistered && !state.everIn) {
      showLogin(
        info.error
          ? `The server refused: ${info.error.replace(/^Closing Link: \S+ \((.*)\)$/, "$1")}`
          : "Could not connect to the chat. Is the server running? If it is, it does not accept this page's address: " +
              "its administrator can add it to websocket.allowed_origins.",
      );
      return;
    }
    scheduleReconnect(info.error || info.reason);
  },
};

function onMessage(msg, history) {
  const time = msg.tags.time ? new Date(msg.tags.time) : new Date();
  const from = nickOf(msg.source);
  const p = msg.params;
  switch (msg.command) {
    case "PONG":
      if (p[p.length - 1] === READY_TOKEN) onReady();
      return;
    case "JOIN":
      return onJoin(from, p[0], time);
    case "PART": {
      const c = conv(p[0], "channel");
      c.members.delete(fold(from));
      if (isMe(from)) {
        c.joined = false;
        info(c, "You left the channel.");
        renderConvList();
      } else info(c, `${from} left${p[1] ? ` (${p[1]})` : ""}.`);
      if (c.key === chat.active) renderMembers();
      return;
    }
    case "KICK": {
      const c = conv(p[0], "channel");
      c.members.delete(fold(p[1]));
      if (isMe(p[1])) {
        c.joined = false;
        renderConvList();
      }
      info(c, `${p[1]} was removed by ${from}${p[2] ? ` (${p[2]})` : ""}.`);
      if (c.key === chat.active) renderMembers();
      return;
    }
    case "QUIT":
      for (const c of chat.convs.values()) {
        if (c.members.delete(fold(from)) || (c.kind === "query" && fold(c.name) === fold(from))) {
          info(c, `${from} quit${p[0] ? ` (${p[0]})` : ""}.`);
          if (c.key === chat.active) renderMembers();
        }
      }
      return;
    case "NICK":
      return onNick(from, p[0]);
    case "PRIVMSG":
    case "NOTICE":
      return onText(msg, from, time, history);
    case "TOPIC": {
      const c = conv(p[0], "channel");
      c.topic = p[1] || "";
      info(c, `${from} set the topic: ${c.topic}`);
      if (c.key === chat.active) $("conv-topic").textContent = c.topic;
      return;
    }
    case "332": {
      const c = conv(p[1], "channel");
      c.topic = p[2] || "";
      if (c.key === chat.active) $("conv-topic").textContent = c.topic;
      return;
    }
    case "353": {
      const key = fold(p[2]);
      const gathered = state.names.get(key) || new Map();
      for (const entry of (p[3] || "").split(" ").filter(Boolean)) {
        const m = state.session.splitPrefix(entry);
        gathered.set(fold(m.nick), m);
      }
      state.names.set(key, gathered);
      return;
    }
    case "366": {
      const key = fold(p[1]);
      const c = chat.convs.get(key);
      if (c) c.members = state.names.get(key) || new Map();
      state.names.delete(key);
      if (key === chat.active) renderMembers();
      return;
    }
    case "MODE":
      if (isChannel(p[0])) {
        // Prefix changes: ask for the list again rather than track modes.
        state.session.send("NAMES", p[0]);
        info(conv(p[0], "channel"), `${from} set mode ${p.slice(1).join(" ")}.`);
      }
      return;
    case "EXTJWT": {
      const token = p[p.length - 1];
      state.token = { value: token, expires: tokenExpiry(token) };
      for (const w of state.tokenWaiters.splice(0)) w.resolve(token);
      return;
    }
    case "900":
      state.loggedInAs = p[2];
      $("me").textContent = `${chat.nick}, logged in with the account ${p[2]}`;
      return;
    case "381":
      if (state.oper) {
        state.session.send("DIE", state.oper.reason);
        $("close-error").textContent = "";
      }
      return;
    case "464":
    case "481":
    case "491":
      if (state.oper) {
        state.oper = null;
        closeDialogError(
          msg.command === "481"
            ? "The server refused: this account may not close the server."
            : "The administrator name or password is wrong. The server was not closed.",
        );
        return;
      }
      break;
    case "FAIL":
      // A rate limit comes as a FAIL after the 464: it is the better reason.
      if ((state.oper || $("close-dialog").open) && (p[0] === "OPER" || p[0] === "DIE")) {
        state.oper = null;
        closeDialogError(`The server refused: ${p[p.length - 1]}`);
        return;
      }
      if (p[0] === "EXTJWT") {
        for (const w of state.tokenWaiters.splice(0)) w.reject(new Error(p[p.length - 1]));
        return;
      }
      break;
    case "001":
    case "002":
    case "003":
    case "372":
    case "375":
    case "376":
    case "422":
      info(conv("", "server"), p.slice(1).join(" "));
      return;
    case "005":
      chat.prefixSymbols = state.session.prefixes.symbols;
      return;
    case "004": case "251": case "252": case "253": case "254": case "255":
    case "265": case "266": case "333": case "329": case "903": case "MARKREAD":
      return;
    default:
      break;
  }
  if (/^[0-9]{3}$/.test(msg.command)) {
    const code = Number(msg.command);
    const text = p.slice(1).join(" ");
    const target = chat.convs.get(chat.active) || conv("", "server");
    info(target, text, code >= 400 && code < 600 ? "error" : "info");
  } else if (msg.command === "FAIL" || msg.command === "WARN") {
    info(chat.convs.get(chat.active) || conv("", "server"), p[p.length - 1], "error");
  }
}

function onJoin(from, channel, time) {
  const c = conv(channel, "channel");
  if (isMe(from)) {
    const first = !chat.lobby;
    if (first) chat.lobby = channel;
    c.joined = true;
    c.members = new Map();
    renderConvList();
    if (state.session.caps.has("draft/chathistory")) {
      state.session.send("CHATHISTORY", "LATEST", channel, "*", String(HISTORY_LINES));
    }
    // After a reconnect the open conversation stays open.
    if (state.pendingJoin === fold(channel) || !chat.active || chat.active === SERVER_KEY) {
      state.pendingJoin = null;
      activate(c.key);
    }
    return;
  }
  c.members.set(fold(from), { nick: from, prefix: "" });
  addMessage(c, { time, kind: "join", text: `${from} joined.` });
  if (c.key === chat.active) renderMembers();
}

function onNick(from, to) {
  if (isMe(from)) {
    chat.nick = to;
    $("me").textContent = to;
    if (state.creds) state.creds.nick = to;
  }
  const query = chat.convs.get(fold(from));
  if (query && query.kind === "query" && fold(from) !== fold(to)) {
    chat.convs.delete(query.key);
    query.key = fold(to);
    query.name = to;
    chat.convs.set(query.key, query);
    if (chat.active === fold(from)) chat.active = query.key;
  }
  for (const c of chat.convs.values()) {
    const m = c.members.get(fold(from));
    if (m) {
      c.members.delete(fold(from));
      c.members.set(fold(to), { nick: to, prefix: m.prefix });
      info(c, isMe(to) ? `You are now known as ${to}.` : `${from} is now known as ${to}.`);
      if (c.key === chat.active) renderMembers();
    } else if (c === query) info(c, `${from} is now known as ${to}.`);
  }
  renderConvList();
}

const QUIET_CHANNEL = /^(\S+) has \d+ members, so joins and quits there are not announced/;
const ANNOUNCEMENT = /^(\S+) (uploaded|replaced) (.+) \((\d+) bytes\): (\S+)$/;

function onText(msg, from, time, history) {
  const [target, raw = ""] = msg.params;
  let text = raw;
  let kind = msg.command === "NOTICE" ? "notice" : "privmsg";
  if (text.startsWith("\x01")) {
    const m = /^\x01ACTION ?(.*?)\x01?$/.exec(text);
    if (!m) return; // other CTCP: nothing to show
    kind = "action";
    text = m[1];
  }
  const fromServer = !msg.source || !msg.source.includes("!");
  if (fromServer && /^\*\*\* Server shutting down: /.test(text)) {
    state.shutdownNotice = text.replace(/^\*\*\* /, "");
  }
  const quiet = fromServer && !history ? QUIET_CHANNEL.exec(text) : null;
  if (quiet) {
    // A crowded lobby lists only its operators on join: ask for everyone.
    const c = conv(quiet[1], "channel");
    c.quiet = true;
    state.session.send("NAMES", quiet[1]);
  }
  let c;
  if (isChannel(target)) c = conv(target, "channel");
  else if (fromServer) c = conv("", "server");
  else c = conv(isMe(from) ? target : from, "query");
  if (fromServer && isChannel(target)) {
    const a = ANNOUNCEMENT.exec(text);
    if (a) {
      files.rememberLink(a[3], a[5]);
      if (!history && !$("files").hidden) files.refresh();
    }
    kind = "announce";
  }
  const self = isMe(from);
  addMessage(c, {
    time,
    kind,
    from,
    text,
    self,
    history,
    msgid: msg.tags.msgid,
    counts: !history && !self,
  });
}

/** After the registration burst: join the lobby if the server did not,
 * and the channels of before a reconnect. */
function onReady() {
  if (!chat.lobby) state.session.send("JOIN", "#lobby");
  for (const name of state.joinedBefore) {
    const c = chat.convs.get(fold(name));
    if (!c || !c.joined) state.session.send("JOIN", name);
  }
  state.joinedBefore = [];
  // Private conversations are kept for accounts: find the recent ones.
  if (state.loggedInAs && state.session.caps.has("draft/chathistory")) {
    const later = new Date(Date.now() + 60000).toISOString();
    state.session.send("CHATHISTORY", "TARGETS", `timestamp=${later}`, "timestamp=1970-01-01T00:00:00.000Z", "20");
  }
  showApp();
  performance.mark("parley-lobby-shown");
}

function rememberJoined() {
  const joined = [...chat.convs.values()].filter((c) => c.kind === "channel" && c.joined);
  if (joined.length) state.joinedBefore = joined.map((c) => c.name);
  for (const c of chat.convs.values()) {
    c.joined = false;
    c.members = new Map();
  }
  chat.lobby = null;
  renderConvList();
  renderMembers();
}

// ---------- sending ----------

function sendText(text) {
  const c = chat.convs.get(chat.active);
  if (text.startsWith("/") && !text.startsWith("//")) return command(text.slice(1), c);
  if (text.startsWith("//")) text = text.slice(1);
  if (!c || c.kind === "server") {
    info(conv("", "server"), "Open a channel or a private conversation to talk, or use /join #channel.", "error");
    return;
  }
  say(c.name, text, "privmsg");
}

function say(target, text, kind) {
  const wire = kind === "action" ? `\x01ACTION ${text}\x01` : text;
  state.session.send("PRIVMSG", target, wire);
  if (!state.session.caps.has("echo-message")) {
    const c = isChannel(target) ? conv(target, "channel") : conv(target, "query");
    addMessage(c, { time: new Date(), kind, from: chat.nick, text, self: true });
  }
}

function command(line, c) {
  const [word, ...rest] = line.split(" ");
  const args = rest.join(" ").trim();
  const s = state.session;
  switch (word.toLowerCase()) {
    case "join":
    case "j": {
      const name = args.split(" ")[0];
      if (!name) return info(c || conv("", "server"), "Usage: /join #channel", "error");
      const channel = isChannel(name) ? name : `#${name}`;
      state.pendingJoin = fold(channel);
      const existing = chat.convs.get(fold(channel));
      if (existing && existing.joined) activate(existing.key);
      else s.send("JOIN", channel);
      return;
    }
    case "part":
    case "leave":
      if (c && c.kind === "channel") s.send("PART", c.name, args || "Leaving");
      return;
    case "msg":
    case "query": {
      const [nick, ...words] = args.split(" ");
      if (!nick) return info(c || conv("", "server"), "Usage: /msg nick text", "error");
      const q = isChannel(nick) ? conv(nick, "channel") : conv(nick, "query");
      activate(q.key);
      if (words.length) say(nick, words.join(" "), "privmsg");
      return;
    }
    case "me":
      if (c && c.kind !== "server") say(c.name, args, "action");
      return;
    case "nick":
      if (args) s.send("NICK", args.split(" ")[0]);
      return;
    case "topic":
      if (c && c.kind === "channel") s.send("TOPIC", c.name, ...(args ? [args] : []));
      return;
    case "quit":
      leave(args || "Leaving");
      return;
    case "quote":
    case "raw":
      if (args) s.ws.send(args);
      return;
    default:
      info(c || conv("", "server"), `Unknown command /${word}. Try /join, /msg, /me, /nick, /topic, /part, /quit.`, "error");
  }
}

// ---------- the file store's token ----------

function tokenExpiry(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp * 1000;
  } catch {
    return Date.now() + 60000;
  }
}

function fileToken(force) {
  if (!force && state.token && state.token.expires - Date.now() > 30000) return Promise.resolve(state.token.value);
  if (!state.session) return Promise.reject(new Error("not connected to the chat"));
  return new Promise((resolve, reject) => {
    const waiter = { resolve, reject };
    state.tokenWaiters.push(waiter);
    if (state.tokenWaiters.length === 1) state.session.send("EXTJWT", "*");
    setTimeout(() => {
      // Given up on: the next caller asks again.
      const i = state.tokenWaiters.indexOf(waiter);
      if (i >= 0) state.tokenWaiters.splice(i, 1);
      reject(new Error("the server did not answer EXTJWT"));
    }, 10000);
  });
}

// ---------- dialogs ----------

function askOverwrite(question) {
  const dialog = $("overwrite-dialog");
  $("overwrite-text").textContent = question;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => done(false);
    $("overwrite-yes").onclick = () => done(true);
    $("overwrite-no").onclick = () => done(false);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    $("overwrite-no").focus();
  });
}

function showLink(name, url) {
  $("link-text").textContent = `Anyone with this link can download ${name}. Your browser would not copy it for you: select it and copy it.`;
  $("link-input").value = url;
  $("link-dialog").showModal();
  $("link-input").select();
}

function closeDialogError(text) {
  $("close-error").textContent = text;
  $("close-confirm").disabled = false;
  $("oper-password").select();
}

// ---------- screens ----------

function showLogin(error = "") {
  clearTimers();
  hideBanner();
  $("app").hidden = true;
  $("closed").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = error;
  $("login-button").disabled = false;
  if (state.creds) $("nick").value = state.creds.nick;
  else if (!$("nick").value) {
    try {
      $("nick").value = localStorage.getItem("parley.nick") || "";
    } catch {
      /* storage may be off */
    }
  }
  $("nick").focus();
}

function showApp() {
  $("login").hidden = true;
  $("closed").hidden = true;
  const wasHidden = $("app").hidden;
  $("app").hidden = false;
  if (wasHidden) $("input").focus();
}

function showClosed(by) {
  clearTimers();
  hideBanner();
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  // "alice (operator admin) (maintenance)": who, then why (the ERROR
  // line's copy has one more closing parenthesis).
  const m = /^(.*?\(operator [^)]*\)) \((.*)\)\)?$/.exec(by);
  const who = m ? m[1] : by;
  const why = m ? m[2] : "";
  $("closed-by").textContent = `Closed by ${who}.`;
  $("closed-reason").textContent = why ? `Reason: ${why}` : "";
  $("app").hidden = true;
  $("login").hidden = true;
  $("closed").hidden = false;
  $("closed-reconnect").focus();
}

function hideBanner() {
  $("banner").hidden = true;
}

function clearTimers() {
  clearTimeout(state.retryTimer);
  clearInterval(state.countdownTimer);
  state.retryTimer = null;
  state.countdownTimer = null;
}

function scheduleReconnect(why) {
  clearTimers();
  const wait = BACKOFF[Math.min(state.attempt, BACKOFF.length - 1)];
  const jittered = Math.round(wait * 1000 * (0.8 + Math.random() * 0.4));
  state.attempt++;
  const until = Date.now() + jittered;
  const reason = (why || "").replace(/^Closing Link: \S+ \((.*)\)$/, "$1");
  // The live region says this once; the countdown beside it is not read out.
  $("banner-text").textContent = `Lost the connection to the server${reason ? `: ${reason}` : ""}. Reconnecting by itself.`;
  const count = () => {
    $("banner-count").textContent = `Next try in ${Math.max(0, Math.ceil((until - Date.now()) / 1000))} s.`;
  };
  count();
  $("banner").hidden = false;
  state.countdownTimer = setInterval(count, 1000);
  state.retryTimer = setTimeout(reconnectNow, jittered);
}

function reconnectNow() {
  clearTimers();
  $("banner-count").textContent = "Trying now…";
  connect(true);
}

function connect(again) {
  if (state.session) state.session.abandon();
  state.shutdownNotice = "";
  state.loggedInAs = null;
  state.session = new Session(socketUrl(), { ...state.creds, renameOnCollision: again }, handler);
  state.session.start();
}

function leave(reason) {
  if (!state.session) return showLogin("");
  state.leaving = true;
  state.session.quit(reason);
}

const wide = () => window.matchMedia("(min-width: 760px)").matches;

function closeNarrowPanels() {
  for (const id of ["convs", "members"]) $(id).classList.remove("open");
  $("toggle-convs").setAttribute("aria-expanded", "false");
  if (!wide()) $("toggle-members").setAttribute("aria-expanded", "false");
}

function toggleFiles(show) {
  const panel = $("files");
  panel.hidden = !show;
  $("toggle-files").setAttribute("aria-expanded", String(show));
  document.querySelector(".layout").classList.toggle("with-files", show);
  if (show) {
    files.refresh();
    $("upload-button").focus();
  }
}

// ---------- wiring ----------

const files = new FilePanel({ token: fileToken, ask: askOverwrite, showLink });
chat.onOpen = closeNarrowPanels;

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const account = $("account-box").open ? $("account").value.trim() : "";
  const password = $("password").value;
  // With an account, its name is the natural nick.
  const nick = $("nick").value.trim() || account;
  if (!nick) {
    $("login-error").textContent = "Please type a name.";
    $("nick").focus();
    return;
  }
  if (account && !password) {
    $("login-error").textContent = "Please type the account's password, or close “Log in with an account”.";
    $("password").focus();
    return;
  }
  state.creds = { nick, account, password };
  state.attempt = 0;
  state.everIn = false;
  state.joinedBefore = []; // a new login starts in the lobby only
  chat.convs.clear();
  chat.active = null;
  performance.mark("parley-join");
  $("login-error").textContent = "Connecting…";
  $("login-button").disabled = true;
  connect(false);
});

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value;
  if (!text.trim()) return;
  if (!state.session || !state.session.registered) {
    // Kept in the box, to send once the chat is back.
    info(chat.convs.get(chat.active) || conv("", "server"), "Not connected right now: send it again once the chat is back.", "error");
    return;
  }
  sendText(text);
  $("input").value = "";
});

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("join-input").value.trim();
  if (!name || !state.session) return;
  command(`join ${name}`, chat.convs.get(chat.active));
  $("join-input").value = "";
});

$("leave-button").addEventListener("click", () => leave("Leaving"));
$("banner-retry").addEventListener("click", reconnectNow);
$("closed-reconnect").addEventListener("click", () => {
  $("closed").hidden = true;
  $("app").hidden = false;
  state.attempt = 0;
  $("banner-text").textContent = "Reconnecting…";
  $("banner-count").textContent = "";
  $("banner").hidden = false;
  connect(true);
});

$("toggle-files").addEventListener("click", () => toggleFiles($("files").hidden));
$("files-close").addEventListener("click", () => {
  toggleFiles(false);
  $("toggle-files").focus();
});
$("toggle-members").addEventListener("click", () => {
  const members = $("members");
  const open = wide() ? members.classList.toggle("collapsed") === false : members.classList.toggle("open");
  $("toggle-members").setAttribute("aria-expanded", String(open));
});
$("toggle-convs").addEventListener("click", () => {
  const open = $("convs").classList.toggle("open");
  $("toggle-convs").setAttribute("aria-expanded", String(open));
});

$("close-server-button").addEventListener("click", () => {
  $("close-error").textContent = "";
  $("close-confirm").disabled = false;
  $("close-dialog").showModal();
  $("oper-name").focus();
});
$("close-cancel").addEventListener("click", () => $("close-dialog").close());
$("close-dialog").addEventListener("close", () => {
  state.oper = null;
  $("oper-password").value = "";
});
$("close-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("oper-name").value.trim();
  const password = $("oper-password").value;
  if (!name || !password) {
    closeDialogError("Type the administrator's name and password.");
    return;
  }
  if (!state.session) {
    closeDialogError("Not connected to the server.");
    return;
  }
  state.oper = { reason: $("close-reason").value.trim() || "closed from the web client" };
  $("close-error").textContent = "Checking…";
  $("close-confirm").disabled = true;
  state.session.send("OPER", name, password);
});
$("link-close").addEventListener("click", () => $("link-dialog").close());

// Files dropped anywhere on the chat are uploaded.
let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
document.addEventListener("dragenter", (e) => {
  if (!hasFiles(e) || $("app").hidden) return;
  dragDepth++;
  $("drop-overlay").hidden = false;
});
document.addEventListener("dragleave", (e) => {
  if (!hasFiles(e)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) $("drop-overlay").hidden = true;
});
document.addEventListener("dragover", (e) => {
  if (hasFiles(e) && !$("app").hidden) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  $("drop-overlay").hidden = true;
  if ($("app").hidden || !e.dataTransfer.files.length) return;
  if ($("files").hidden) toggleFiles(true);
  files.uploadAll(e.dataTransfer.files);
});

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !document.querySelector("dialog[open]")) {
    if ($("convs").classList.contains("open") || $("members").classList.contains("open")) closeNarrowPanels();
    else if (!$("files").hidden) {
      toggleFiles(false);
      $("toggle-files").focus();
    }
  }
});

window.addEventListener("beforeunload", () => {
  if (state.session) state.session.send("QUIT", "Page closed");
});

$("toggle-members").setAttribute("aria-expanded", String(wide()));
showLogin("");
performance.mark("parley-ready");
