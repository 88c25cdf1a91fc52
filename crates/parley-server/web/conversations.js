// The conversations: the lobby, other channels, private conversations and
// the server's own messages, each with its lines, members, topic and
// unread count, and how they show on the page (the list, the open one,
// its members). It holds no socket: app.js feeds it what the server says.

import { fold } from "./irc.js";
import { el, messageElement } from "./view.js";

const $ = (id) => document.getElementById(id);

/** Messages kept per conversation in the page. */
const KEEP_LINES = 1000;
export const SERVER_KEY = "*server*";

/** What the conversations share with the rest of the page. */
export const chat = {
  nick: "",
  lobby: null,
  convs: new Map(),
  active: null,
  /** The channel membership prefixes, most powerful first (ISUPPORT PREFIX). */
  prefixSymbols: "@+",
  /** Called when a conversation is opened (app.js closes narrow panels). */
  onOpen: () => {},
};

export function conv(name, kind) {
  const key = kind === "server" ? SERVER_KEY : fold(name);
  let c = chat.convs.get(key);
  if (!c) {
    c = { key, name, kind, messages: [], msgids: new Set(), unread: 0, members: new Map(), topic: "", joined: false };
    chat.convs.set(key, c);
    renderConvList();
  }
  return c;
}

export function isChannel(name) {
  return name.startsWith("#") || name.startsWith("&");
}

export function isMe(nick) {
  return fold(nick) === fold(chat.nick);
}

/** Adds a line to a conversation; `m` as view.messageElement takes it. */
export function addMessage(c, m) {
  if (m.msgid) {
    if (c.msgids.has(m.msgid)) return;
    c.msgids.add(m.msgid);
  }
  c.messages.push(m);
  if (c.messages.length > KEEP_LINES) c.messages.splice(0, c.messages.length - KEEP_LINES);
  if (c.key === chat.active) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(messageElement(m));
    while (list.children.length > KEEP_LINES) list.firstChild.remove();
    if (atBottom || m.self) list.scrollTop = list.scrollHeight;
  } else if (m.counts) {
    c.unread++;
    renderConvList();
  }
}

/** Puts a conversation's lines in time order (stable: equal times keep
 * their order), and shows them again if it is open. */
export function sortByTime(c) {
  c.messages.sort((a, b) => a.time - b.time);
  if (c.key === chat.active) renderMessages();
}

export function info(c, text, kind = "info") {
  addMessage(c, { time: new Date(), kind, text });
}

export function activate(key) {
  const c = chat.convs.get(key);
  if (!c) return;
  chat.active = key;
  c.unread = 0;
  renderConvList();
  renderMessages();
  renderMembers();
  $("conv-title").textContent = c.kind === "server" ? "Server messages" : c.name;
  $("conv-topic").textContent = c.topic;
  $("input").placeholder =
    c.kind === "server" ? "Commands: /join #channel, /msg nick text" : `Message ${c.name} (Enter to send)`;
  chat.onOpen();
}

export function renderMessages() {
  const c = chat.convs.get(chat.active);
  const list = $("messages");
  // A screen reader should hear new messages, not a whole conversation
  // again when it is opened: the live region is off while it is filled.
  list.setAttribute("aria-live", "off");
  list.replaceChildren(...(c ? c.messages.map(messageElement) : []));
  list.scrollTop = list.scrollHeight;
  requestAnimationFrame(() => list.setAttribute("aria-live", "polite"));
}

export function renderConvList() {
  const order = { channel: 0, query: 1, server: 2 };
  const convs = [...chat.convs.values()].sort(
    (a, b) => order[a.kind] - order[b.kind] || (a.key === lobbyKey() ? -1 : b.key === lobbyKey() ? 1 : a.key.localeCompare(b.key)),
  );
  $("conv-list").replaceChildren(
    ...convs.map((c) => {
      const label = c.kind === "server" ? "Server" : c.name;
      const button = el(
        "button",
        { type: "button", class: "conv" + (c.key === chat.active ? " active" : "") + (c.joined || c.kind !== "channel" ? "" : " parted") },
        el("span", { class: "conv-name" }, label),
        c.unread ? el("span", { class: "badge" }, String(c.unread), el("span", { class: "visually-hidden" }, " unread")) : null,
      );
      if (c.key === chat.active) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => {
        activate(c.key);
        $("input").focus();
      });
      return el("li", {}, button);
    }),
  );
  const unread = [...chat.convs.values()].reduce((n, c) => n + c.unread, 0);
  document.title = unread ? `(${unread}) Parley` : "Parley";
  // On a phone the list is behind this button: it carries the count.
  $("toggle-convs").textContent = unread ? `Chats (${unread})` : "Chats";
}

export function lobbyKey() {
  return chat.lobby ? fold(chat.lobby) : null;
}

export function renderMembers() {
  const c = chat.convs.get(chat.active);
  const list = $("member-list");
  if (!c || c.kind !== "channel") {
    $("members-title").textContent = "Members";
    list.replaceChildren(el("li", { class: "hint" }, c && c.kind === "query" ? `A private conversation with ${c.name}.` : "No channel open."));
    return;
  }
  const symbols = chat.prefixSymbols;
  const rank = (p) => (p ? symbols.indexOf(p[0]) : symbols.length);
  const members = [...c.members.values()].sort((a, b) => rank(a.prefix) - rank(b.prefix) || fold(a.nick).localeCompare(fold(b.nick)));
  // In a crowded channel joins and quits are not announced, so the list
  // is as of the last NAMES.
  $("members-title").textContent = `Members (${members.length}${c.quiet ? ", as of joining" : ""})`;
  list.replaceChildren(
    ...members.map((m) => {
      const item = el(
        "button",
        { type: "button", class: "member", attrs: { "aria-label": isMe(m.nick) ? `${m.nick} (you)` : `Message ${m.nick} privately` } },
        m.prefix ? el("span", { class: "prefix", attrs: { "aria-hidden": "true" } }, m.prefix[0]) : null,
        m.nick,
        isMe(m.nick) ? el("span", { class: "you" }, " (you)") : null,
      );
      if (isMe(m.nick)) item.disabled = true;
      else item.addEventListener("click", () => openQuery(m.nick));
      return el("li", {}, item);
    }),
  );
}

export function openQuery(nick) {
  const c = conv(nick, "query");
  activate(c.key);
  $("input").focus();
}
