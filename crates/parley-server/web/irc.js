// IRC over the WebSocket at /socket (IRCv3 websocket extension, subprotocol
// text.ircv3.net: one line per text message, no CR LF): parsing and
// formatting lines, and one Session from the first CAP LS to the close.
// The Session negotiates capabilities, logs in with SASL PLAIN when asked,
// answers PING, gathers batches, and hands everything else to its handler.
// It knows nothing of the page.

/** Without a word from the server for this long, the client asks (PING)... */
const QUIET_MS = 60000;
/** ...and gives the connection up when this much more passes unanswered:
 * a connection that died without a close (a sleeping laptop, a dropped
 * network) is noticed and the page reconnects. */
const ANSWER_MS = 30000;

/** Capabilities the client uses when the server offers them. */
const WANTED_CAPS = [
  "message-tags", "server-time", "batch", "echo-message", "multi-prefix",
  "draft/chathistory", "away-notify", "account-tag",
];

const TAG_UNESCAPES = { ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" };

function unescapeTag(value) {
  return value.replace(/\\(.?)/g, (_, c) => (c in TAG_UNESCAPES ? TAG_UNESCAPES[c] : c));
}

/** One line into {tags, source, command, params}. */
export function parseLine(line) {
  const msg = { tags: {}, source: null, command: "", params: [] };
  let rest = line;
  if (rest.startsWith("@")) {
    const end = rest.indexOf(" ");
    for (const tag of rest.slice(1, end < 0 ? rest.length : end).split(";")) {
      const eq = tag.indexOf("=");
      if (eq < 0) msg.tags[tag] = "";
      else msg.tags[tag.slice(0, eq)] = unescapeTag(tag.slice(eq + 1));
    }
    rest = end < 0 ? "" : rest.slice(end + 1).replace(/^ +/, "");
  }
  if (rest.startsWith(":")) {
    const end = rest.indexOf(" ");
    msg.source = rest.slice(1, end < 0 ? rest.length : end);
    rest = end < 0 ? "" : rest.slice(end + 1).replace(/^ +/, "");
  }
  const end = rest.indexOf(" ");
  msg.command = (end < 0 ? rest : rest.slice(0, end)).toUpperCase();
  rest = end < 0 ? "" : rest.slice(end + 1);
  while (rest.length) {
    if (rest.startsWith(":")) {
      msg.params.push(rest.slice(1));
      break;
    }
    const sp = rest.indexOf(" ");
    if (sp < 0) {
      msg.params.push(rest);
      break;
    }
    if (sp > 0) msg.params.push(rest.slice(0, sp));
    rest = rest.slice(sp + 1);
  }
  return msg;
}

/** A command and its parameters as one line; the last may contain spaces. */
export function formatLine(command, ...params) {
  const parts = [command];
  params.forEach((p, i) => {
    const s = String(p).replace(/[\r\n\0]/g, " ");
    const last = i === params.length - 1;
    if (last && (s === "" || s.includes(" ") || s.startsWith(":"))) parts.push(":" + s);
    else parts.push(s);
  });
  return parts.join(" ");
}

/** The nick of a `nick!user@host` source. */
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

/** Parley's casemapping is ascii: only A-Z fold. */
export function fold(name) {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** The socket's URL: this page's host, ws or wss as the page is served. */
export function socketUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/socket`;
}

function base64Utf8(text) {
  let binary = "";
  for (const b of new TextEncoder().encode(text)) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * One connection. `handler` gets:
 *   registered(nick), message(msg), batch(type, params, msgs),
 *   nickRejected(code, nick, text), loginFailed(text), closed(info).
 */
export class Session {
  constructor(url, { nick, account, password, renameOnCollision }, handler) {
    this.url = url;
    this.nick = nick;
    this.wantedNick = nick;
    this.account = account || "";
    this.password = password || "";
    this.renameOnCollision = !!renameOnCollision;
    this.handler = handler;
    this.caps = new Set();
    this.offered = new Map();
    this.isupport = new Map();
    this.prefixes = { modes: "ov", symbols: "@+" };
    this.registered = false;
    this.errorText = "";
    this.batches = new Map();
    this.ws = null;
    this.closed = false;
    this.lastHeard = Date.now();
    this.asked = false;
    this.liveness = null;
  }

  start() {
    const ws = new WebSocket(this.url, ["text.ircv3.net"]);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.send("CAP", "LS", "302");
      this.send("NICK", this.nick);
      this.send("USER", this.nick.replace(/[^A-Za-z0-9._-]/g, "") || "web", "0", "*", "Parley web client");
    });
    ws.addEventListener("message", (e) => {
      // An abandoned session says nothing more, even what was under way.
      if (this.closed || typeof e.data !== "string") return;
      this.lastHeard = Date.now();
      this.asked = false;
      for (const line of e.data.split(/\r?\n/)) if (line && !this.closed) this.receive(parseLine(line));
    });
    ws.addEventListener("close", (e) => this.finish(e.code, e.reason));
  }

  finish(code, reason) {
    clearInterval(this.liveness);
    if (this.closed) return;
    this.closed = true;
    this.handler.closed({ code, reason, error: this.errorText, registered: this.registered });
  }

  send(command, ...params) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(formatLine(command, ...params));
  }

  quit(reason) {
    this.send("QUIT", reason);
    // The server answers with ERROR and closes; close anyway if it does not.
    setTimeout(() => this.ws && this.ws.close(), 2000);
  }

  /** Stops without a word: the page gives up on this socket. */
  abandon() {
    clearInterval(this.liveness);
    this.closed = true;
    if (this.ws) this.ws.close();
  }

  /** Asks a silent server whether it is there; ends a connection that
   * does not answer (its close may never come by itself). */
  checkLiveness() {
    const silent = Date.now() - this.lastHeard;
    if (silent > QUIET_MS + ANSWER_MS) {
      this.finish(4000, "the server stopped answering");
      if (this.ws) this.ws.close();
    } else if (silent > QUIET_MS && !this.asked) {
      this.asked = true;
      this.send("PING", "parley-web-alive");
    }
  }

  receive(msg) {
    const batchId = msg.tags.batch;
    if (batchId && this.batches.has(batchId) && msg.command !== "BATCH") {
      this.batches.get(batchId).messages.push(msg);
      return;
    }
    switch (msg.command) {
      case "PING":
        this.send("PONG", ...msg.params);
        return;
      case "CAP":
        this.onCap(msg);
        return;
      case "AUTHENTICATE":
        if (msg.params[0] === "+") this.sendCredentials();
        return;
      case "BATCH":
        this.onBatch(msg);
        return;
      case "ERROR":
        this.errorText = msg.params[0] || "";
        return;
      case "001":
        this.registered = true;
        this.nick = msg.params[0];
        this.liveness = setInterval(() => this.checkLiveness(), 5000);
        this.handler.registered(this.nick);
        return;
      case "005":
        this.onIsupport(msg);
        break;
      case "903":
        if (!this.registered) this.send("CAP", "END");
        return;
      case "908":
        return;
      case "902": case "904": case "905": case "906":
        this.handler.loginFailed(msg.params[msg.params.length - 1]);
        this.abandon();
        return;
      case "432": case "433": case "436":
        if (!this.registered) {
          if (this.renameOnCollision && msg.command === "433" && this.nick.length < 28) {
            this.nick += "_";
            this.send("NICK", this.nick);
            return;
          }
          this.handler.nickRejected(msg.command, msg.params[1] || this.nick, msg.params[msg.params.length - 1]);
          this.abandon();
          return;
        }
        break;
      case "NICK":
        if (fold(nickOf(msg.source)) === fold(this.nick)) this.nick = msg.params[0];
        break;
      default:
        break;
    }
    this.handler.message(msg);
  }

  onCap(msg) {
    const sub = (msg.params[1] || "").toUpperCase();
    if (sub === "LS") {
      const more = msg.params[2] === "*";
      const list = msg.params[more ? 3 : 2] || "";
      for (const item of list.split(" ").filter(Boolean)) {
        const eq = item.indexOf("=");
        this.offered.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
      }
      if (more || this.registered) return;
      const want = WANTED_CAPS.filter((c) => this.offered.has(c));
      if (this.account) {
        if (!this.offered.has("sasl")) {
          this.handler.loginFailed("This server does not offer account logins (SASL).");
          this.abandon();
          return;
        }
        want.push("sasl");
      }
      if (want.length) this.send("CAP", "REQ", want.join(" "));
      else this.send("CAP", "END");
    } else if (sub === "ACK") {
      for (const c of (msg.params[2] || "").split(" ").filter(Boolean)) {
        if (c.startsWith("-")) this.caps.delete(c.slice(1));
        else this.caps.add(c);
      }
      if (this.registered) return;
      if (this.account && this.caps.has("sasl")) this.send("AUTHENTICATE", "PLAIN");
      else this.send("CAP", "END");
    } else if (sub === "NAK") {
      if (this.registered) return;
      if (this.account) {
        this.handler.loginFailed("The server refused the account login.");
        this.abandon();
        return;
      }
      this.send("CAP", "END");
    }
  }

  sendCredentials() {
    const payload = base64Utf8(`${this.account}\0${this.account}\0${this.password}`);
    for (let i = 0; i < payload.length; i += 400) this.send("AUTHENTICATE", payload.slice(i, i + 400));
    if (payload.length % 400 === 0) this.send("AUTHENTICATE", "+");
  }

  onBatch(msg) {
    const ref = msg.params[0] || "";
    if (ref.startsWith("+")) {
      this.batches.set(ref.slice(1), { type: msg.params[1] || "", params: msg.params.slice(2), messages: [] });
    } else if (ref.startsWith("-")) {
      const b = this.batches.get(ref.slice(1));
      this.batches.delete(ref.slice(1));
      if (b) this.handler.batch(b.type, b.params, b.messages);
    }
  }

  onIsupport(msg) {
    for (const token of msg.params.slice(1, -1)) {
      const eq = token.indexOf("=");
      const key = eq < 0 ? token : token.slice(0, eq);
      const value = eq < 0 ? "" : token.slice(eq + 1);
      this.isupport.set(key, value);
      if (key === "PREFIX") {
        const m = /^\(([^)]*)\)(.*)$/.exec(value);
        if (m) this.prefixes = { modes: m[1], symbols: m[2] };
      }
    }
  }

  /** Splits a NAMES entry into its prefix symbols and nick. */
  splitPrefix(entry) {
    let i = 0;
    while (i < entry.length && this.prefixes.symbols.includes(entry[i])) i++;
    return { prefix: entry.slice(0, i), nick: nickOf(entry.slice(i)) };
  }
}
