// Building the page's pieces with DOM APIs. User data only ever becomes
// text nodes (textContent) or the href of a link that was checked to be
// http(s); nothing here parses HTML.

/** An element with properties, attributes (`attrs`) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "attrs") for (const [a, v] of Object.entries(value)) node.setAttribute(a, v);
    else if (key === "class") node.className = value;
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;

/** A link that opens in a new tab and tells the target nothing. */
export function externalLink(href, text = href) {
  return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, text);
}

/** Text with its http(s) URLs as links; everything else stays text. */
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    // Punctuation ending a sentence is not part of the URL.
    const trimmed = url.replace(/[.,;:!?)\]]+$/, "");
    url = trimmed;
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) continue;
    if (match.index > last) out.push(document.createTextNode(text.slice(last, match.index)));
    out.push(externalLink(parsed.href, url));
    last = match.index + url.length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/** IRC formatting codes (colours, bold...) are dropped, not rendered. */
export function stripFormatting(text) {
  return text.replace(/\x03(\d{1,2}(,\d{1,2})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, "");
}

export function formatTime(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A small, stable hue per nick, so speakers are easier to tell apart. */
export function nickHue(nick) {
  let h = 0;
  for (const c of nick.toLowerCase()) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

/**
 * One line of a conversation. `m` is {time, kind, from, text, self}:
 * kind is privmsg, action, notice, or an event (join, part, quit, nick,
 * info, error, topic).
 */
export function messageElement(m) {
  const time = el("time", { dateTime: m.time.toISOString(), class: "time" }, formatTime(m.time));
  const text = linkify(stripFormatting(m.text || ""));
  const classes = ["msg", `msg-${m.kind}`];
  if (m.self) classes.push("msg-self");
  if (m.history) classes.push("msg-history");
  if (m.kind === "privmsg" || m.kind === "notice") {
    const nick = el("span", { class: "nick" }, m.from);
    nick.dataset.hue = String(nickHue(m.from) % 12);
    return el("li", { class: classes.join(" ") }, time, " ", nick, " ", el("span", { class: "text" }, text));
  }
  if (m.kind === "action") {
    return el("li", { class: classes.join(" ") }, time, " ", el("span", { class: "text" }, "* ", m.from, " ", text));
  }
  return el("li", { class: classes.join(" ") }, time, " ", el("span", { class: "text" }, text));
}
