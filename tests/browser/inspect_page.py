#!/usr/bin/env python3
"""Opens an HTML page in headless Chromium and prints what a test needs to know, as JSON.

Drives Chromium through the DevTools protocol over --remote-debugging-pipe (file descriptors
3 and 4, NUL-terminated JSON), so it needs nothing but the Python standard library and the
browser. Usage:

    inspect_page.py CHROMIUM PAGE OUT_DIR [--filter TEXT] [--timeout SECONDS] [--height PIXELS]

PAGE is a file, or an http:// URL (a page `driftd serve` serves).

Prints one JSON object: console messages and exceptions, every request the page made besides
the page itself, load timings, facts read from the DOM (cards, charts, table order, what the
filter and sorting do, the same page with scripts disabled) and the screenshots and PDF it
wrote into OUT_DIR.
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class Browser:
    def __init__(self, chromium, timeout):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="driftd-chromium-")
        # Chromium reads commands from fd 3 and writes answers and events to fd 4.
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def pipes():
            # Copies first: either end may already be descriptor 3 or 4. dup2 makes
            # inheritable descriptors; every other pipe end is close-on-exec.
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pipes,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id, what=method)

    def wait(self, matches, what):
        deadline = time.monotonic() + self.timeout
        for i, message in enumerate(self.events):
            if matches(message):
                return self.events.pop(i)
        while time.monotonic() < deadline:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe waiting for {what}: "
                                       + self.stderr_tail())
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "error" in message and message.get("id") == self.next_id:
                raise RuntimeError(f"{what}: {message['error']}")
            if matches(message):
                return message
            self.events.append(message)
        raise TimeoutError(f"no {what} within {self.timeout} s")

    def stderr_tail(self):
        try:
            self.process.kill()
            return self.process.stderr.read().decode(errors="replace")[-2000:]
        except Exception:  # noqa: BLE001 - best effort for the error message
            return ""

    def close(self):
        try:
            os.write(self.to_browser, json.dumps(
                {"id": self.next_id + 1, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - the browser is killed below anyway
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    def __init__(self, browser, width=1280, height=900, scripts=True):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["result"]
        attached = browser.send("Target.attachToTarget",
                                {"targetId": target["targetId"], "flatten": True})
        self.session = attached["result"]["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        if not scripts:
            self.call("Emulation.setScriptExecutionDisabled", {"value": True})

    def call(self, method, params=None):
        return self.browser.send(method, params, self.session).get("result", {})

    def open(self, url):
        self.call("Page.navigate", {"url": url})
        self.browser.wait(lambda m: m.get("method") == "Page.loadEventFired"
                          and m.get("sessionId") == self.session, what="the load event")

    def js(self, expression):
        result = self.call("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True,
                            "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def media(self, scheme):
        self.call("Emulation.setEmulatedMedia",
                  {"features": [{"name": "prefers-color-scheme", "value": scheme}]})

    def frames(self):
        self.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def screenshot(self, path, height):
        """The top `height` pixels of the page. The viewport is made that tall for the shot:
        cards off screen are not rendered (content-visibility: auto), also not for a capture
        beyond the viewport."""
        full = self.js("document.documentElement.scrollHeight")
        height = min(height, full)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.frames()
        data = self.call("Page.captureScreenshot", {"format": "png"})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        path.write_bytes(base64.b64decode(data["data"]))
        return str(path)

    def printed_cards(self):
        """Cards the print style sheet renders whole (none skipped as off screen)."""
        self.call("Emulation.setEmulatedMedia", {"media": "print"})
        n = self.js("""[...document.querySelectorAll('section.feature')]
          .filter(c => getComputedStyle(c).contentVisibility === 'visible').length""")
        self.call("Emulation.setEmulatedMedia", {"media": ""})
        return n

    def pdf(self, path):
        data = self.call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": False})
        path.write_bytes(base64.b64decode(data["data"]))
        return str(path)


def page_events(browser, session, page_url):
    """Console messages, exceptions and requests other than the page itself."""
    console, requests = [], []
    for m in browser.events:
        if m.get("sessionId") != session:
            continue
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            console.append({"level": p["type"], "text": text})
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            console.append({"level": "exception",
                            "text": d.get("exception", {}).get("description", d.get("text"))})
        elif method == "Log.entryAdded":
            e = p["entry"]
            console.append({"level": e["level"], "text": e["text"], "source": e["source"]})
        elif method == "Network.requestWillBeSent":
            if p["request"]["url"] != page_url:
                requests.append(p["request"]["url"])
    return console, requests


FACTS = r"""(() => {
  const rows = [...document.querySelectorAll('#features tbody tr')];
  const cards = [...document.querySelectorAll('section.feature')];
  return {
    cards: cards.length,
    cards_with_chart: cards.filter(c => c.querySelector('svg.chart')).length,
    cards_without_values: cards.filter(c => c.querySelector('p.empty')).length,
    rows: rows.length,
    row_names: rows.map(r => r.cells[0].textContent),
    row_drift: rows.map(r => r.dataset.drift === '1'),
    card_drift: cards.map(c => c.dataset.drift === '1'),
    scripts: document.scripts.length,
    external: [...document.querySelectorAll('[src],[href]')]
      .map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => !u.startsWith('#')),
    controls_shown: !!document.getElementById('controls') && !document.getElementById('controls').hidden,
    verdict: (document.querySelector('.cards .big') || {}).textContent,
    dataset_links: [...document.querySelectorAll('#datasets tbody td.name a')]
      .map(a => a.getAttribute('href')),
    csp: (document.querySelector('meta[http-equiv="Content-Security-Policy"]') || {}).content,
    history_names: [...document.querySelectorAll('#history section.history')]
      .map(s => s.querySelector('h3 .name').textContent),
    history_points: [...document.querySelectorAll('#history svg.line')].map(s => +s.dataset.points),
    history_hits: [...document.querySelectorAll('#history svg.line')]
      .map(s => ((s.querySelector('path.hit') || {getAttribute: () => ''})
        .getAttribute('d').match(/m-3,0/g) || []).length),
    counter_charts: document.querySelectorAll('#counters svg.line').length,
  };
})()"""

INTERACT = r"""(async (text) => {
  const visible = () => [...document.querySelectorAll('#features tbody tr')].filter(r => !r.hidden);
  const cardsShown = () => [...document.querySelectorAll('section.feature')].filter(c => !c.hidden).length;
  const out = {};
  const only = document.getElementById('drifted-only');
  if (!only) return out;
  only.checked = true; only.dispatchEvent(new Event('change'));
  out.drifted_only_rows = visible().length; out.drifted_only_cards = cardsShown();
  only.checked = false; only.dispatchEvent(new Event('change'));
  const filter = document.getElementById('filter');
  filter.value = text; filter.dispatchEvent(new Event('input'));
  out.filter_rows = visible().map(r => r.cells[0].textContent); out.filter_cards = cardsShown();
  filter.value = ''; filter.dispatchEvent(new Event('input'));
  const th = [...document.querySelectorAll('#features th')];
  th[0].click();
  out.by_name = visible().map(r => r.cells[0].textContent);
  out.first_card_after_sort = document.querySelector('section.feature h3 .name').textContent;
  th[3].click();
  out.by_score = visible().map(r => r.cells[3].textContent);
  return out;
})"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("chromium")
    ap.add_argument("page")
    ap.add_argument("out_dir")
    ap.add_argument("--filter", default="")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--height", type=int, default=2200)
    args = ap.parse_args()
    served = args.page.startswith("http://")
    page = None if served else pathlib.Path(args.page).resolve()
    url = args.page if served else page.as_uri()
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    browser = Browser(args.chromium, args.timeout)
    try:
        tab = Tab(browser)
        tab.media("light")
        started = time.monotonic()
        tab.open(url)
        # Two animation frames after load: the first paint of the page has happened.
        tab.frames()
        opened_ms = (time.monotonic() - started) * 1000
        timing = tab.js("""(() => { const n = performance.getEntriesByType('navigation')[0];
          const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
          return {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd,
                  first_contentful_paint_ms: p ? p.startTime : null}; })()""")
        timing["opened_ms"] = opened_ms
        facts = tab.js(FACTS)
        facts["printed_cards"] = tab.printed_cards()
        shots = {"light": tab.screenshot(out_dir / "report-light.png", args.height)}
        tab.media("dark")
        shots["dark"] = tab.screenshot(out_dir / "report-dark.png", args.height)
        tab.media("light")
        shots["pdf"] = tab.pdf(out_dir / "report.pdf")
        interaction = tab.js(f"({INTERACT})({json.dumps(args.filter)})")
        console, requests = page_events(browser, tab.session, url)

        plain = Tab(browser, scripts=False)
        plain.open(url)
        without_scripts = plain.js("""(() => ({
          cards_with_chart: document.querySelectorAll('section.feature svg.chart').length,
          rows: document.querySelectorAll('#features tbody tr').length,
          controls_shown: !!document.getElementById('controls')
            && !document.getElementById('controls').hidden}))()""")
        more_console, more_requests = page_events(browser, plain.session, url)
        print(json.dumps({
            "console": console + more_console,
            "requests": requests + more_requests,
            "timing": timing,
            "facts": facts,
            "interaction": interaction,
            "without_scripts": without_scripts,
            "files": shots,
            "bytes": page.stat().st_size if page else len(tab.js(
                "document.documentElement.outerHTML").encode()),
        }))
    finally:
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - one readable line for the test's message
        print(f"inspect_page.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
