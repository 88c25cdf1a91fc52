"""The built-in web client in a real Chromium against the real parleyd:
the seed's whole experience (a name, the lobby, upload, download, leave,
close the server) plus what a browser adds (reconnecting, no HTML
injection, phone width, dark scheme). Every wait is bounded; none sleeps."""

import hashlib
import os
import re
import signal

from playwright.sync_api import expect

from conftest import (
    ADMIN_NAME,
    ADMIN_PASSWORD,
    ARTIFACTS,
    CONFIG,
    Parleyd,
    join,
    screenshot,
    wait_message,
)

def pattern(n: int, seed: int) -> bytes:
    """`n` bytes that differ per seed and are not all text."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


def privmsg_text(line: str) -> str:
    """The text of a PRIVMSG line (its last parameter, `:` or not)."""
    text = line.split(" PRIVMSG ", 1)[1].partition(" ")[2]
    return text[1:] if text.startswith(":") else text


def test_first_load_is_small_and_the_lobby_shows_within_a_second(server, new_page):
    page = new_page()
    page.goto(server.url)
    page.fill("#nick", "timer")
    page.press("#nick", "Enter")
    page.wait_for_selector("#app:not([hidden])")
    # The page's own marks, in ms since navigation began: the name form
    # ready, the name sent, the lobby shown. The time the page takes is
    # the first plus the last minus the second: the test's typing (and
    # Playwright's round trips to do it) is not the page's.
    m = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const res = performance.getEntriesByType('resource');
            const mark = (n) => performance.getEntriesByName(n)[0].startTime;
            return {
                bytes: nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0),
                requests: res.length + 1,
                ready: mark('parley-ready'), join: mark('parley-join'), lobby: mark('parley-lobby-shown'),
            };
        }"""
    )
    total = m["ready"] + (m["lobby"] - m["join"])
    line = (
        f"first load: {m['bytes']} bytes in {m['requests']} requests; name form ready {m['ready']:.0f} ms "
        f"after navigation; lobby shown {m['lobby'] - m['join']:.0f} ms after the name was sent; "
        f"together {total:.0f} ms"
    )
    print("\n" + line)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first-load.txt").write_text(line + "\n")
    assert m["bytes"] <= 200 * 1024
    assert total <= 1000


def test_messages_cross_between_two_pages_and_an_irc_client(server, new_page, irc_clients):
    alice, bob = new_page(), new_page()
    join(alice, server, "alice")
    join(bob, server, "bob")
    carol = irc_clients("carol")
    expect(alice.locator("#member-list")).to_contain_text("carol")

    alice.fill("#input", "hello from alice")
    alice.press("#input", "Enter")
    wait_message(bob, "hello from alice")
    assert privmsg_text(carol.expect(lambda l: "PRIVMSG #lobby" in l)) == "hello from alice"

    carol.send("PRIVMSG #lobby :hello from carol over TCP")
    wait_message(alice, "hello from carol over TCP")
    wait_message(bob, "hello from carol over TCP")

    bob.fill("#input", "and bob answers")
    bob.press("#input", "Enter")
    wait_message(alice, "and bob answers")
    assert privmsg_text(carol.expect(lambda l: "PRIVMSG #lobby" in l)) == "and bob answers"

    # Joins and quits are shown, and the member list follows them.
    carol.send("QUIT :bye now")
    wait_message(alice, "carol quit")
    expect(alice.locator("#member-list")).not_to_contain_text("carol")
    screenshot(alice, "lobby")


def test_private_messages_and_unread_counts(server, new_page, irc_clients):
    alice, bob = new_page(), new_page()
    join(alice, server, "alice")
    join(bob, server, "bob")
    alice.click("#member-list >> text=bob")
    expect(alice.locator("#conv-title")).to_have_text("bob")
    alice.fill("#input", "just between us")
    alice.press("#input", "Enter")
    # Bob is in the lobby: the new conversation shows one unread message.
    badge = bob.locator("#conv-list button", has_text="alice").locator(".badge")
    expect(badge).to_contain_text("1")
    bob.click("#conv-list >> text=alice")
    wait_message(bob, "just between us")
    expect(badge).to_have_count(0)
    # Another channel by the join box, and /msg from the IRC side.
    alice.fill("#join-input", "#side")
    alice.press("#join-input", "Enter")
    expect(alice.locator("#conv-title")).to_have_text("#side")
    dave = irc_clients("dave")
    dave.send("PRIVMSG alice :hi from dave")
    expect(alice.locator("#conv-list button", has_text="dave").locator(".badge")).to_contain_text("1")


def test_the_lobby_shows_recent_history_once(server, new_page, irc_clients):
    carol = irc_clients("carol")
    for i in range(3):
        carol.send(f"PRIVMSG #lobby :earlier line {i}")
    carol.barrier()
    page = new_page()
    join(page, server, "alice")
    lines = page.locator("#messages .msg-history")
    expect(lines).to_have_count(3)
    assert lines.locator(".text").all_inner_texts() == [f"earlier line {i}" for i in range(3)]
    # After a restart the history is asked for again, and shown once.
    server.restart()
    expect(page.locator("#banner")).to_be_hidden(timeout=40_000)
    page.locator("#member-list", has_text="alice").wait_for()
    irc_clients("dave").barrier()
    expect(page.locator("#messages .msg", has_text="earlier line 1")).to_have_count(1)


def test_a_crowded_lobby_still_lists_everyone(new_page, irc_clients):
    # Above irc.quiet_lobby_above members the lobby stops announcing joins
    # and NAMES on join lists only its operators; the page asks for all.
    crowded = Parleyd(CONFIG + "[irc]\nquiet_lobby_above = 1\n")
    try:
        irc_clients("carol", crowded)
        irc_clients("dave", crowded)
        page = new_page()
        join(page, crowded, "alice")
        expect(page.locator("#member-list")).to_contain_text("carol")
        expect(page.locator("#member-list")).to_contain_text("dave")
        expect(page.locator("#members-title")).to_contain_text("as of joining")
    finally:
        crowded.close()


def test_a_taken_name_is_asked_again(server, new_page, irc_clients):
    irc_clients("carol")
    page = new_page()
    page.goto(server.url)
    page.fill("#nick", "carol")
    page.press("#nick", "Enter")
    expect(page.locator("#login-error")).to_contain_text("taken")
    expect(page.locator("#login")).to_be_visible()
    screenshot(page, "login-name-taken")
    page.fill("#nick", "9lives")
    page.press("#nick", "Enter")
    expect(page.locator("#login-error")).to_contain_text("can't be used")
    page.fill("#nick", "carol2")
    page.press("#nick", "Enter")
    page.wait_for_selector("#member-list >> text=carol2")


def test_logging_in_with_an_account(server, new_page):
    server.add_account("erin", "erins-password")
    page = new_page()
    page.goto(server.url)
    page.fill("#nick", "eweb")
    page.click("#account-box summary")
    page.fill("#account", "erin")
    page.fill("#password", "wrong-password")
    page.press("#password", "Enter")
    expect(page.locator("#login-error")).to_contain_text("Could not log in")
    page.fill("#password", "erins-password")
    page.press("#password", "Enter")
    page.wait_for_selector("#member-list >> text=eweb")
    expect(page.locator("#me")).to_contain_text("account erin")
    # With the name left empty, the account's name is the nick.
    other = new_page()
    other.goto(server.url)
    other.click("#account-box summary")
    other.fill("#account", "erin")
    other.fill("#password", "erins-password")
    other.press("#password", "Enter")
    other.wait_for_selector("#member-list >> text=erin (you)")


def login(page, server, account: str, password: str):
    page.goto(server.url)
    page.click("#account-box summary")
    page.fill("#account", account)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_selector(f"#member-list >> text={account} (you)")


def test_an_accounts_private_conversations_come_back(server, new_page):
    server.add_account("erin", "erins-password")
    server.add_account("finn", "finns-password")
    erin, finn = new_page(), new_page()
    login(erin, server, "erin", "erins-password")
    login(finn, server, "finn", "finns-password")
    finn.click("#member-list >> text=erin")
    finn.fill("#input", "a word in private")
    finn.press("#input", "Enter")
    expect(erin.locator("#conv-list button", has_text="finn")).to_be_visible()
    # Erin opens the chat again elsewhere: the conversation is there, with its lines.
    erin.context.close()
    again = new_page()
    login(again, server, "erin", "erins-password")
    again.click("#conv-list >> text=finn")
    wait_message(again, "a word in private")


def upload_from_page(page, name: str, data: bytes):
    if page.locator("#files").is_hidden():
        page.click("#toggle-files")
    page.set_input_files("#file-input", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])


def test_an_upload_arrives_byte_identical_and_is_announced(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    carol = irc_clients("carol")
    data = pattern(300_000, 1)
    upload_from_page(page, "report.bin", data)
    expect(page.locator("#transfers li", has_text="report.bin")).to_contain_text("Uploaded")
    expect(page.locator("#file-table")).to_contain_text("report.bin")
    screenshot(page, "files")
    line = carol.expect(lambda l: "NOTICE #lobby" in l and "report.bin" in l)
    assert "alice uploaded report.bin (300000 bytes)" in line
    assert server.get("/files/report.bin", carol.token()) == data
    # The share link, copied to the clipboard, downloads without a login.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
    page.locator("#file-table tr", has_text="report.bin").get_by_role("button", name=re.compile("share link")).click()
    expect(page.locator("#files-status")).to_contain_text("copied")
    link = page.evaluate("navigator.clipboard.readText()")
    assert "/files/s/" in link
    assert server.get("/" + link.split("://", 1)[1].split("/", 1)[1]) == data


def test_an_upload_can_be_cancelled(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    # The request is held at the browser's edge until it is cancelled.
    held = []
    page.route("**/files/slow.bin", lambda route: held.append(route))
    with page.expect_request("**/files/slow.bin"):
        upload_from_page(page, "slow.bin", pattern(200_000, 6))
    row = page.locator("#transfers li", has_text="slow.bin")
    expect(row.locator("progress")).to_be_visible()
    row.get_by_role("button", name=re.compile("Cancel")).click()
    expect(row).to_contain_text("Cancelled")
    # Let go of the held request without sending it (unrouting would
    # continue it to the server).
    for route in held:
        try:
            route.abort()
        except Exception:
            pass  # the page's abort got there first
    carol = irc_clients("carol")
    assert b"slow.bin" not in server.get("/files", carol.token())


def test_drag_and_drop_uploads(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    carol = irc_clients("carol")
    page.evaluate(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
            for (const type of ['dragenter', 'dragover', 'drop']) {
                document.querySelector('#messages').dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
            }
        }"""
    )
    expect(page.locator("#transfers li", has_text="dropped.txt")).to_contain_text("Uploaded")
    assert server.get("/files/dropped.txt", carol.token()) == b"dropped bytes"


def test_the_overwrite_question_answered_no_and_yes(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    carol = irc_clients("carol")
    first, second, third = pattern(5000, 2), pattern(6000, 3), pattern(7000, 4)
    upload_from_page(page, "same.bin", first)
    expect(page.locator("#file-table")).to_contain_text("same.bin")

    upload_from_page(page, "same.bin", second)
    dialog = page.locator("#overwrite-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("same.bin")
    screenshot(page, "overwrite-dialog")
    page.click("#overwrite-no")
    expect(page.locator("#transfers li").first).to_contain_text("kept the file already there")
    assert server.get("/files/same.bin", carol.token()) == first

    upload_from_page(page, "same.bin", third)
    expect(dialog).to_be_visible()
    page.click("#overwrite-yes")
    expect(page.locator("#transfers li").first).to_contain_text("Replaced")
    carol.expect(lambda l: "alice replaced same.bin (7000 bytes)" in l)
    assert server.get("/files/same.bin", carol.token()) == third
    page.click("#transfers-clear")
    expect(page.locator("#transfers li")).to_have_count(0)


def test_a_download_from_the_page(server, new_page, irc_clients):
    carol = irc_clients("carol")
    data = pattern(123_456, 5)
    assert server.put("/files/from-carol.bin", data, carol.token()) == 201
    page = new_page(accept_downloads=True)
    join(page, server, "alice")
    page.click("#toggle-files")
    row = page.locator("#file-table tr", has_text="from-carol.bin")
    with page.expect_download() as info:
        row.get_by_role("button", name=re.compile("Download")).click()
    download = info.value
    assert download.suggested_filename == "from-carol.bin"
    with open(download.path(), "rb") as f:
        assert f.read() == data


def test_markup_in_a_message_is_shown_as_text(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    carol = irc_clients("carol")
    evil = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> see https://example.org/a?b=1.'
    carol.send(f"PRIVMSG #lobby :{evil}")
    wait_message(page, "<script>window.pwned=1</script>")
    msg = page.locator("#messages .msg", has_text="window.pwned").first
    assert msg.locator(".text").inner_text() == evil
    assert page.locator("#messages script, #messages img").count() == 0
    assert page.evaluate("window.pwned") is None
    link = msg.locator("a")
    expect(link).to_have_attribute("href", "https://example.org/a?b=1")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")


def test_the_page_reconnects_after_the_server_restarts(server, new_page, irc_clients):
    page = new_page()
    join(page, server, "alice")
    page.fill("#join-input", "#side")
    page.press("#join-input", "Enter")
    expect(page.locator("#conv-title")).to_have_text("#side")
    server.stop()
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner")).to_contain_text("Reconnecting")
    screenshot(page, "reconnecting")
    page.fill("#input", "said while away")
    page.press("#input", "Enter")
    wait_message(page, "Not connected right now")
    expect(page.locator("#input")).to_have_value("said while away")
    server.start()
    expect(page.locator("#banner")).to_be_hidden(timeout=40_000)
    # Back in the lobby and in #side by itself, and talking.
    expect(page.locator("#conv-list button", has_text="#side")).not_to_have_class(re.compile("parted"))
    expect(page.locator("#conv-title")).to_have_text("#side")  # still the open one
    carol = irc_clients("carol")
    page.click("#conv-list >> text=#lobby")
    expect(page.locator("#member-list")).to_contain_text("carol")
    page.fill("#input", "back again")
    page.press("#input", "Enter")
    assert privmsg_text(carol.expect(lambda l: "PRIVMSG #lobby" in l)) == "back again"


def test_a_page_the_socket_refuses_says_why(new_page, browser):
    # The socket accepts only pages from the public URL's origin; this
    # page is opened by its loopback address instead.
    other = Parleyd(CONFIG + '[files]\npublic_url = "http://chat.example.org:6680"\n')
    try:
        page = new_page()
        page.goto(other.url)
        page.fill("#nick", "stranger")
        page.press("#nick", "Enter")
        expect(page.locator("#login-error")).to_contain_text("websocket.allowed_origins")
        expect(page.locator("#login")).to_be_visible()
    finally:
        other.close()


def test_over_https_the_page_and_its_socket_use_tls(new_page, irc_clients):
    secure = Parleyd(CONFIG + '[files]\ntls_listen = ["127.0.0.1:0"]\n')
    try:
        carol = irc_clients("carol", secure)
        page = new_page(ignore_https_errors=True)
        sockets = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"https://{secure.https}/")
        page.fill("#nick", "tls-user")
        page.press("#nick", "Enter")
        page.wait_for_selector("#member-list >> text=carol")
        assert sockets == [f"wss://{secure.https}/socket"]
        page.fill("#input", "sealed")
        page.press("#input", "Enter")
        assert privmsg_text(carol.expect(lambda l: "PRIVMSG #lobby" in l)) == "sealed"
    finally:
        secure.close()


def test_a_server_that_stops_answering_is_noticed(server, new_page):
    # The page's clock is the test's: minutes of silence pass at once.
    page = new_page()
    page.clock.install()
    join(page, server, "alice")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        page.clock.fast_forward(65_000)  # quiet for a minute: the page asks
        page.clock.fast_forward(35_000)  # no answer: it gives the connection up
        expect(page.locator("#banner")).to_contain_text("stopped answering")
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    page.clock.fast_forward(5_000)  # the first retry is due
    expect(page.locator("#banner")).to_be_hidden(timeout=20_000)
    expect(page.locator("#member-list")).to_contain_text("alice")


def test_leaving_returns_to_the_name_form(server, new_page, irc_clients):
    carol = irc_clients("carol")
    page = new_page()
    join(page, server, "alice")
    page.click("#leave-button")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("You left")
    carol.expect(lambda l: l.startswith(":alice!") and " QUIT " in l)


def test_leaving_while_reconnecting_stops_the_retries(server, new_page):
    page = new_page()
    join(page, server, "alice")
    server.stop()
    expect(page.locator("#banner")).to_be_visible()
    page.click("#leave-button")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()


def test_closing_the_server_tells_every_page_who_and_why(server, new_page, irc_clients):
    alice, bob = new_page(), new_page()
    join(alice, server, "alice")
    join(bob, server, "bob")
    carol = irc_clients("carol")
    alice.click("#close-server-button")
    alice.fill("#oper-name", ADMIN_NAME)
    alice.fill("#oper-password", "not the password")
    alice.press("#oper-password", "Enter")
    expect(alice.locator("#close-error")).to_contain_text("wrong")
    expect(bob.locator("#app")).to_be_visible()
    alice.fill("#oper-password", ADMIN_PASSWORD)
    alice.fill("#close-reason", "maintenance until 9")
    alice.click("#close-confirm")
    for page in (alice, bob):
        expect(page.locator("#closed")).to_be_visible()
        expect(page.locator("#closed-by")).to_contain_text(f"Closed by alice (operator {ADMIN_NAME})")
        expect(page.locator("#closed-reason")).to_contain_text("maintenance until 9")
    screenshot(bob, "closed-by-admin")
    carol.expect(lambda l: l.startswith("ERROR") and "maintenance until 9" in l)
    assert server.wait_exit() == 0


def test_too_many_wrong_administrator_passwords_are_refused_with_the_wait(server, new_page):
    page = new_page()
    join(page, server, "alice")
    page.click("#close-server-button")
    page.fill("#oper-name", ADMIN_NAME)
    for attempt in range(4):
        page.fill("#oper-password", f"guess {attempt}")
        page.click("#close-confirm")
        expect(page.locator("#close-error")).not_to_have_text("Checking…")
        expect(page.locator("#close-confirm")).to_be_enabled()
    expect(page.locator("#close-error")).to_contain_text("try again in")
    expect(page.locator("#app")).to_be_visible()


def test_keyboard_alone_reaches_the_lobby_and_dialogs(server, new_page):
    page = new_page()
    page.goto(server.url)
    expect(page.locator("#nick")).to_be_focused()
    page.keyboard.type("keys")
    page.keyboard.press("Enter")
    expect(page.locator("#input")).to_be_focused()
    page.keyboard.type("typed, not clicked")
    page.keyboard.press("Enter")
    wait_message(page, "typed, not clicked")
    page.focus("#close-server-button")
    page.keyboard.press("Enter")
    expect(page.locator("#close-dialog")).to_be_visible()
    expect(page.locator("#oper-name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#close-dialog")).to_be_hidden()
    # Every control has a name a screen reader can say.
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, input:not([type=file])')]
              .filter(e => !e.labels?.length && !e.getAttribute('aria-label') && !e.textContent.trim())
              .map(e => e.id || e.outerHTML)"""
    )
    assert unnamed == []


def test_phone_width_and_dark_scheme(server, new_page):
    phone = new_page(viewport={"width": 375, "height": 740}, color_scheme="dark", device_scale_factor=2)
    phone.goto(server.url)
    screenshot(phone, "login-phone-dark")
    phone.fill("#nick", "phoney")
    phone.press("#nick", "Enter")
    phone.wait_for_selector("#app:not([hidden])")
    phone.fill("#input", "a long message that should wrap on a narrow phone screen without scrolling sideways")
    phone.press("#input", "Enter")
    wait_message(phone, "narrow phone screen")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(phone, "lobby-phone-dark")
    phone.click("#toggle-convs")
    expect(phone.locator("#convs")).to_be_visible()
    screenshot(phone, "conversations-phone-dark")
    phone.keyboard.press("Escape")
    phone.click("#toggle-files")
    expect(phone.locator("#files")).to_be_visible()
    screenshot(phone, "files-phone-dark")
    dark = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark != "rgb(255, 255, 255)"
    desktop_dark = new_page(color_scheme="dark")
    join(desktop_dark, server, "night")
    screenshot(desktop_dark, "lobby-dark")


CONTRAST = """() => {
    // WCAG 2 contrast of every visible text against the first opaque
    // background behind it; the lowest ratios first.
    const lum = (c) => {
        const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const opaque = (c) => !/rgba\\(.*,\\s*0\\)$/.test(c) && c !== "transparent";
    const out = [];
    for (const node of document.querySelectorAll("body *")) {
        const own = [...node.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
        if (!own || !node.checkVisibility() || node.closest("[aria-hidden=true], .visually-hidden")) continue;
        const style = getComputedStyle(node);
        if (style.opacity !== "1" || node.closest(":disabled")) continue;
        let bg = null;
        for (let e = node; e && !bg; e = e.parentElement) {
            const c = getComputedStyle(e).backgroundColor;
            if (opaque(c)) bg = c;
        }
        const [a, b] = [lum(style.color), lum(bg || "rgb(255,255,255)")];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        out.push({ratio, text: node.textContent.trim().slice(0, 40), color: style.color, bg});
    }
    return out.sort((x, y) => x.ratio - y.ratio);
}"""


def test_text_is_readable_in_both_schemes(server, new_page, irc_clients):
    for scheme in ("light", "dark"):
        page = new_page(color_scheme=scheme)
        page.goto(server.url)
        page.fill("#nick", "9")
        page.press("#nick", "Enter")
        expect(page.locator("#login-error")).to_contain_text("can't be used")
        screens = [page.evaluate(CONTRAST)]
        page.fill("#nick", f"reader-{scheme}")
        page.press("#nick", "Enter")
        page.wait_for_selector("#app:not([hidden])")
        carol = irc_clients(f"carol-{scheme}")
        carol.send("PRIVMSG #lobby :see https://example.org")
        wait_message(page, "example.org")
        page.click("#toggle-files")
        screens.append(page.evaluate(CONTRAST))
        for texts in screens:
            print(f"\n{scheme}: {len(texts)} texts, lowest {texts[0]['ratio']:.1f}:1 ({texts[0]['text']!r})")
            low = [t for t in texts if t["ratio"] < 4.5]
            assert not low, f"{scheme}: text under 4.5:1: {low[:5]}"


def test_the_assets_carry_a_strict_policy(server, new_page):
    page = new_page()
    response = page.goto(server.url)
    csp = response.headers["content-security-policy"]
    for part in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", f"ws://{server.http}"]:
        assert part in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    screenshot(page, "login")
    # Nothing loaded from anywhere but the server itself.
    origins = page.evaluate("[...new Set(performance.getEntriesByType('resource').map(r => new URL(r.name).origin))]")
    assert origins == [server.url.rstrip("/")]
