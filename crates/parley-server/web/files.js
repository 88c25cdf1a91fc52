// The file panel: the store's list, uploads (button and drag-and-drop,
// with progress and cancel, and the overwrite question), downloads and
// share links, over the HTTP API of docs/PROTOCOL.md with the EXTJWT
// token of the chat session as the Bearer credential.

import { el, formatSize } from "./view.js";

/** "6 Dec, 09:41": enough to tell uploads apart in a narrow panel. */
function shortDate(date) {
  return date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function fileUrl(name) {
  return `/files/${encodeURIComponent(name)}`;
}

/** The JSON error body's sentence, or the status line. */
function errorText(status, body) {
  try {
    const parsed = JSON.parse(body);
    if (parsed && parsed.message) return parsed.message;
  } catch {
    /* not JSON */
  }
  return `The server answered ${status}.`;
}

export class FilePanel {
  /**
   * `token()` resolves to a fresh EXTJWT token (`force` asks for a new one);
   * `ask(question)` resolves true or false (the overwrite dialog);
   * `showLink(name, url)` shows a link the clipboard would not take.
   */
  constructor({ token, ask, showLink }) {
    this.token = token;
    this.ask = ask;
    this.showLink = showLink;
    this.links = new Map();
    this.entries = [];
    this.queue = Promise.resolve();
    this.table = document.getElementById("file-table").tBodies[0];
    this.status = document.getElementById("files-status");
    this.transfers = document.getElementById("transfers");
    this.input = document.getElementById("file-input");
    document.getElementById("upload-button").addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.uploadAll(this.input.files);
      this.input.value = "";
    });
    document.getElementById("files-refresh").addEventListener("click", () => this.refresh());
    this.clear = document.getElementById("transfers-clear");
    this.clear.addEventListener("click", () => {
      for (const row of [...this.transfers.children]) if (row.cancel.disabled) row.remove();
      this.clear.hidden = !this.transfers.children.length;
      document.getElementById("upload-button").focus();
    });
  }

  say(text) {
    this.status.textContent = text;
  }

  /** A share link seen in an upload's answer or the lobby's announcement. */
  rememberLink(name, url) {
    this.links.set(name, url);
  }

  async authorized(path, init = {}, retry = true) {
    const headers = new Headers(init.headers || {});
    headers.set("Authorization", `Bearer ${await this.token(false)}`);
    const resp = await fetch(path, { ...init, headers, cache: "no-store" });
    if (resp.status === 401 && retry) {
      await this.token(true);
      return this.authorized(path, init, false);
    }
    return resp;
  }

  async refresh() {
    try {
      const resp = await this.authorized("/files", { headers: { Accept: "application/json" } });
      if (!resp.ok) {
        this.say(errorText(resp.status, await resp.text()));
        return;
      }
      this.entries = await resp.json();
      this.render();
    } catch (e) {
      this.say(`Could not list the files: ${e.message}`);
    }
  }

  render() {
    const rows = this.entries.map((f) => {
      const when = new Date(f.modified);
      return el(
        "tr",
        {},
        el("th", { scope: "row", class: "file-name" }, f.name),
        el("td", { class: "num" }, formatSize(f.size)),
        el("td", {}, f.uploaded_by),
        el("td", { class: "when" }, el("time", { dateTime: f.modified, title: when.toLocaleString() }, shortDate(when))),
        el(
          "td",
          { class: "file-actions" },
          el("button", { type: "button", onclick: () => this.download(f.name), attrs: { "aria-label": `Download ${f.name}` } }, "Download"),
          el("button", { type: "button", onclick: () => this.share(f.name), attrs: { "aria-label": `Copy the share link of ${f.name}` } }, "Copy link"),
        ),
      );
    });
    this.table.replaceChildren(...rows);
    if (!rows.length) {
      this.table.append(el("tr", {}, el("td", { colSpan: 5, class: "empty" }, "No files yet. Upload one!")));
    }
  }

  uploadAll(fileList) {
    for (const file of Array.from(fileList)) {
      const row = this.transferRow(file);
      this.queue = this.queue
        .then(() => this.upload(file, row))
        .catch((e) => {
          row.state.textContent = `Failed: ${e.message}`;
          row.cancel.disabled = true;
        });
    }
  }

  transferRow(file) {
    const progress = el("progress", { max: file.size || 1, value: 0, attrs: { "aria-label": `Upload of ${file.name}` } });
    const state = el("span", { class: "transfer-state" }, "Waiting…");
    const cancel = el("button", { type: "button", attrs: { "aria-label": `Cancel the upload of ${file.name}` } }, "Cancel");
    const row = el("li", { class: "transfer" }, el("span", { class: "transfer-name" }, file.name), progress, state, cancel);
    row.cancelled = false;
    row.xhr = null;
    cancel.addEventListener("click", () => {
      row.cancelled = true;
      if (row.xhr) row.xhr.abort();
      state.textContent = "Cancelled";
      cancel.disabled = true;
    });
    row.progress = progress;
    row.state = state;
    row.cancel = cancel;
    this.transfers.prepend(row);
    this.clear.hidden = false;
    return row;
  }

  async upload(file, row) {
    if (row.cancelled) return;
    let answer = await this.put(file, row, true);
    if (answer.status === 412) {
      const existing = this.entries.find((f) => f.name === file.name);
      const who = existing ? ` (${formatSize(existing.size)}, uploaded by ${existing.uploaded_by})` : "";
      row.progress.value = 0; // nothing was stored: the server answered before the body
      row.state.textContent = "Waiting for your answer…";
      const yes = await this.ask(`A file named “${file.name}” is already on the server${who}. Replace it with yours?`);
      if (!yes) {
        row.state.textContent = "Not uploaded: kept the file already there";
        row.cancel.disabled = true;
        this.say(`Kept the existing ${file.name}.`);
        return;
      }
      if (row.cancelled) return;
      answer = await this.put(file, row, false);
    }
    row.cancel.disabled = true;
    if (answer.status === 0) return; // cancelled or failed: already said
    if (answer.status === 200 || answer.status === 201) {
      row.progress.value = row.progress.max;
      row.state.textContent = answer.status === 201 ? "Uploaded" : "Replaced";
      try {
        const entry = JSON.parse(answer.body);
        if (entry.share_url) this.rememberLink(file.name, entry.share_url);
      } catch {
        /* the answer's body is informative only */
      }
      this.say(`${file.name} ${answer.status === 201 ? "uploaded" : "replaced"}.`);
      await this.refresh();
    } else {
      row.state.textContent = `Failed: ${errorText(answer.status, answer.body)}`;
      this.say(`${file.name} was not uploaded: ${errorText(answer.status, answer.body)}`);
    }
  }

  /** One PUT, create-only unless told to replace; resolves {status, body}. */
  async put(file, row, createOnly, retry = true) {
    const token = await this.token(!retry);
    const answer = await new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      row.xhr = xhr;
      xhr.open("PUT", fileUrl(file.name));
      xhr.setRequestHeader("Authorization", `Bearer ${token}`);
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      if (createOnly) xhr.setRequestHeader("If-None-Match", "*");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          row.progress.max = e.total || 1;
          row.progress.value = e.loaded;
          row.state.textContent = `${Math.floor((100 * e.loaded) / (e.total || 1))}%`;
        }
      });
      xhr.addEventListener("load", () => resolve({ status: xhr.status, body: xhr.responseText }));
      xhr.addEventListener("error", () => {
        row.state.textContent = "Failed: the connection to the server broke";
        resolve({ status: 0, body: "" });
      });
      xhr.addEventListener("abort", () => resolve({ status: 0, body: "" }));
      row.state.textContent = "0%";
      xhr.send(file);
    });
    row.xhr = null;
    if (answer.status === 401 && retry) return this.put(file, row, createOnly, false);
    return answer;
  }

  async download(name) {
    this.say(`Downloading ${name}…`);
    try {
      const resp = await this.authorized(fileUrl(name));
      if (!resp.ok) {
        this.say(`Could not download ${name}: ${errorText(resp.status, await resp.text())}`);
        return;
      }
      const blob = await resp.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      this.say(`Downloaded ${name}.`);
    } catch (e) {
      this.say(`Could not download ${name}: ${e.message}`);
    }
  }

  /** Copies the file's share link; asks the server for a new one when
   * none was seen (only the uploader or an operator may). */
  async share(name) {
    let url = this.links.get(name);
    if (!url) {
      const resp = await this.authorized(`${fileUrl(name)}/share`, { method: "POST" });
      const body = await resp.text();
      if (resp.status !== 201) {
        this.say(`No share link for ${name}: ${errorText(resp.status, body)} Its link is in the lobby's announcement of the upload.`);
        return;
      }
      url = JSON.parse(body).share_url;
      this.rememberLink(name, url);
    }
    try {
      await navigator.clipboard.writeText(url);
      this.say(`The share link of ${name} is copied: anyone with it can download the file.`);
    } catch {
      this.showLink(name, url);
    }
  }
}
