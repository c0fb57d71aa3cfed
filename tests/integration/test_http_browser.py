"""The local HTTP server (SPEC §9) seen by real clients: the status page in a
headless Chromium driven over the DevTools protocol (live updates without a
reload, no external resources, hostile values shown as text, readable on a
phone), a real Prometheus scraping /metrics, and promtool linting it.

Screenshots go to $TIDEGATE_ARTIFACTS_DIR, else <repo>/build-host/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64decode
from pathlib import Path

import pytest

from tidegate_testkit import free_port, port_open, sequence_sensor, stop_process, wait_until

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

HOSTILE = """<img src=x onerror="document.title='pwned'"><script>window.pwned=1</script>"""


# --------------------------------------------------------------------------
# helpers


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("TIDEGATE_ARTIFACTS_DIR") or REPO / "build-host")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_atomically(path: Path, text: str) -> None:
    """A polled `file` sensor never sees a half-written (empty) file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_config(port: int, outputs: list[dict] | None = None) -> dict:
    extra: dict = {"http": {"listen": f"127.0.0.1:{port}"}}
    if outputs:
        extra["outputs"] = outputs
    return extra


def start_http_gateway(make_config, start_gateway, sensors, rules_yaml: str | None = None,
                       outputs: list[dict] | None = None):
    """A gateway with its HTTP server on a free port, once /api/status answers
    200 (503 until the first snapshot)."""
    port = free_port()
    cfg = make_config(sensors=sensors, extra=http_config(port, outputs))
    if rules_yaml:
        (cfg.path.parent / "rules.d" / "rules.yaml").write_text(rules_yaml)
    gw = start_gateway(cfg)
    base = f"http://127.0.0.1:{port}"
    gw.wait_until(lambda: port_open(port) and http_get(base + "/api/status")[0] == 200,
                  timeout=10, what=f"HTTP server on {base} with a first snapshot")
    return cfg, gw, base


class Chromium:
    """A headless Chromium and one DevTools-protocol session to its page."""

    def __init__(self, timeout: float = 20.0):
        import websocket  # python3-websocket (websocket-client)

        self.profile = Path(tempfile.mkdtemp(prefix="tidegate-it-chromium."))
        self.log_path = self.profile / "chromium.log"
        self._log = open(self.log_path, "wb")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--mute-audio",
             f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        self.ws = None
        self.events: list[dict] = []
        self._next_id = 0
        try:
            def page_target():
                if self.proc.poll() is not None:
                    raise AssertionError(f"chromium exited ({self.proc.returncode}):\n{self.log()}")
                try:
                    status, _, body = http_get(f"http://127.0.0.1:{self.port}/json/list", 2)
                except OSError:
                    return None
                if status != 200:
                    return None
                pages = [t for t in json.loads(body) if t.get("type") == "page"
                         and t.get("webSocketDebuggerUrl")]
                return pages[0] if pages else None

            target = wait_until(page_target, timeout, interval=0.1,
                                what="chromium's DevTools endpoint and its page")
            # No Origin header: Chromium refuses DevTools websockets from
            # origins it was not told to allow.
            self.ws = websocket.create_connection(target["webSocketDebuggerUrl"],
                                                  timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def call(self, method: str, timeout: float = 15.0, **params) -> dict:
        """Sends one command and returns its result; events that arrive
        meanwhile are kept in self.events."""
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no DevTools answer to {method} within {timeout} s")
            self.ws.settimeout(left)
            msg = json.loads(self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise AssertionError(f"DevTools {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str):
        """Runtime.evaluate in the page; the value (JSON-able), promises awaited."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {r['exceptionDetails']}\n"
                                 f"expression: {expression}")
        return r["result"].get("value")

    def navigate(self, url: str, timeout: float = 10.0) -> None:
        r = self.call("Page.navigate", url=url)
        assert not r.get("errorText"), f"navigating to {url}: {r}"
        wait_until(lambda: self.eval("document.readyState") == "complete", timeout,
                   what=f"{url} loaded")

    def poll(self, expression: str, predicate, timeout: float, what: str):
        """Evaluates `expression` until predicate(value) holds; returns the value."""
        last = {}

        def check():
            last["v"] = self.eval(expression)
            return predicate(last["v"])

        try:
            wait_until(check, timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen in the page: {last.get('v')!r}") from None
        return last["v"]

    def next_frame(self) -> None:
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def screenshot(self, path: Path) -> Path:
        r = self.call("Page.captureScreenshot", format="png")
        data = b64decode(r["data"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        path.write_bytes(data)
        return path

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        stop_process(self.proc)
        self._log.close()
        # Chromium's helper processes may still write into the profile for
        # a moment after the browser process has gone.
        for _ in range(20):
            shutil.rmtree(self.profile, ignore_errors=True)
            if not self.profile.exists():
                break
            time.sleep(0.1)


@pytest.fixture
def chromium():
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian package chromium)")
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()


# The page's state as the tests read it: one row of each table by its data
# attributes, plus what shows the page was not reloaded.
PAGE_STATE = """(() => {
  const s = document.querySelector('#sensors tr[data-key="room.temp"]');
  const r = document.querySelector('#rules tr[data-rule="room_hot"]');
  const f = document.querySelector('#sensors tr[data-key="pump.flow"]');
  return {
    value: s ? s.dataset.value : null,
    cell: s && s.querySelector('td.value') ? s.querySelector('td.value').textContent : null,
    unit: s ? s.children[2].textContent : null,
    rule: r ? r.dataset.state : null,
    flow: f ? f.dataset.value : null,
    gw: document.getElementById('gw').textContent,
    link: document.getElementById('link').textContent,
    marker: window.__tidegateMarker === undefined ? null : window.__tidegateMarker,
  };
})()"""


# --------------------------------------------------------------------------
# the tests


def test_status_page_in_headless_chromium(make_config, start_gateway, chromium, tmp_path):
    temp_file = tmp_path / "room-temp"
    write_atomically(temp_file, "21.5\n")
    sensors = [
        {"name": "room.temp", "driver": "file", "interval": "200ms", "unit": "°C",
         "options": {"path": str(temp_file)}},
        sequence_sensor("pump.flow", values=[1.5, 2.5], interval="300ms", unit="l/min"),
    ]
    cfg, gw, base = start_http_gateway(
        make_config, start_gateway, sensors,
        "rules:\n  - name: room_hot\n    when: room.temp > 50\n")

    chromium.call("Network.enable")
    chromium.call("Page.enable")
    chromium.call("Log.enable")
    chromium.call("Emulation.setDeviceMetricsOverride", width=1200, height=800,
                  deviceScaleFactor=1, mobile=False)
    chromium.navigate(base + "/")

    first = chromium.poll(
        PAGE_STATE,
        lambda s: s["value"] == "21.5" and s["rule"] == "idle" and s["flow"] in ("1.5", "2.5")
        and s["link"].startswith("connected"),
        timeout=10, what="room.temp 21.5, room_hot idle, pump.flow shown, link connected")
    assert first["cell"] == "21.5", first
    assert first["unit"] == "°C", first
    assert first["gw"] == f"tidegate · {cfg.gateway_id}", first
    assert chromium.eval("document.title") == f"tidegate · {cfg.gateway_id}"

    # The same document must update itself: a marker set now survives only
    # if the page is never reloaded.
    chromium.eval("window.__tidegateMarker = 42")
    written = time.monotonic()
    write_atomically(temp_file, "60\n")
    hot = chromium.poll(PAGE_STATE, lambda s: s["rule"] == "firing" and s["value"] == "60",
                        timeout=5, what="room_hot firing and room.temp 60 without a reload")
    took = time.monotonic() - written
    print(f"the page showed the change {took:.2f} s after the file was written")
    assert hot["marker"] == 42, f"the page was reloaded: {hot}"
    assert hot["cell"] == "60", hot
    badge = chromium.eval(
        "document.querySelector('#rules tr[data-rule=\"room_hot\"]').children[1].textContent")
    assert badge == "firing"

    # No external resources: everything the page loaded came from the gateway.
    origin = chromium.eval("location.origin")
    assert origin == base
    resources = chromium.eval("performance.getEntriesByType('resource').map(e => e.name)")
    assert resources, "the page polled nothing?"
    foreign = [u for u in resources if not u.startswith(origin + "/")]
    assert not foreign, f"resources from elsewhere: {foreign}"
    requested = [e["params"]["request"]["url"] for e in chromium.events
                 if e["method"] == "Network.requestWillBeSent"]
    foreign = [u for u in requested if not (u.startswith(origin + "/") or u.startswith("data:"))]
    assert not foreign, f"requests to elsewhere: {foreign}"
    assert any(u.startswith(origin + "/api/status") for u in requested), requested
    # The page's own Content-Security-Policy must not block its inline
    # script and style.
    csp = [e["params"]["entry"]["text"] for e in chromium.events
           if e["method"] == "Log.entryAdded"
           and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    assert not csp, f"CSP violations: {csp}"
    errors = [e["params"] for e in chromium.events if e["method"] == "Runtime.exceptionThrown"]
    assert not errors, f"script errors: {errors}"
    styled = chromium.eval("({body: getComputedStyle(document.body).marginTop,"
                           " section: getComputedStyle(document.querySelector('section'))"
                           ".overflowX})")
    assert styled == {"body": "0px", "section": "auto"}, f"inline style not applied: {styled}"
    headers = {k.lower(): v for k, v in http_get(base + "/")[1].items()}
    assert "default-src 'none'" in headers.get("content-security-policy", ""), headers

    out = artifacts_dir()
    desktop = chromium.screenshot(out / "status-page.png")
    print(f"screenshot: {desktop}")

    # A phone: no horizontal scrolling of the page itself (wide tables
    # scroll inside their own section).
    chromium.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
                  deviceScaleFactor=2, mobile=True)
    chromium.next_frame()
    layout = chromium.poll(
        "({inner: window.innerWidth, scroll: document.documentElement.scrollWidth,"
        " body: document.body.scrollWidth})",
        lambda v: v["inner"] == 390, timeout=5, what="the phone viewport applied")
    assert layout["scroll"] <= 392 and layout["body"] <= 392, \
        f"the page scrolls sideways on a 390 px phone: {layout}"
    phone = chromium.screenshot(out / "status-page-phone.png")
    print(f"screenshot: {phone}")
    assert gw.running()


def test_hostile_sensor_value_is_text_not_markup(make_config, start_gateway, chromium, tmp_path):
    label = tmp_path / "label"
    write_atomically(label, HOSTILE + "\n")
    junk = tmp_path / "junk"
    # A number sensor fed markup: a bad reading, so a dead letter whose
    # detail may carry the text; that table must show it as text too.
    write_atomically(junk, "<img src=y onerror=\"window.pwned2=1\">\n")
    sensors = [
        {"name": "dev.label", "driver": "file", "type": "string", "interval": "200ms",
         "unit": "<b>u</b>", "options": {"path": str(label)}},
        {"name": "dev.junk", "driver": "file", "interval": "200ms", "options": {"path": str(junk)}},
    ]
    cfg, gw, base = start_http_gateway(make_config, start_gateway, sensors)

    # The API carries the value as a JSON string, exactly.
    def api_label():
        status = json.loads(http_get(base + "/api/status")[2])
        return [s for s in status["sensors"] if s["name"] == "dev.label" and s["value"]]
    got = gw.wait_until(api_label, timeout=10, what="dev.label in /api/status")
    assert got[0]["value"] == HOSTILE, got

    chromium.call("Page.enable")
    chromium.navigate(base + "/")
    seen = chromium.poll(
        """(() => { const r = document.querySelector('#sensors tr[data-key="dev.label"]');
           return r ? {cell: r.querySelector('td.value').textContent, value: r.dataset.value,
                       unit: r.children[2].textContent} : null; })()""",
        lambda v: v and v["cell"] == HOSTILE, timeout=10,
        what="the hostile value shown as text in the dev.label row")
    assert seen["value"] == HOSTILE and seen["unit"] == "<b>u</b>", seen
    # Let the page poll a few more times (every update rewrites the rows),
    # and let any dead letter reach the page.
    letter = chromium.poll(
        """[...document.querySelectorAll('#deadletters tr')].map(tr => tr.textContent)
           .filter(t => t.includes('dev.junk'))""",
        lambda rows: rows, timeout=5, what="the dev.junk dead letter on the page")
    assert '<img src=y onerror="window.pwned2=1">' in letter[0], letter
    time.sleep(2.2)
    found = chromium.eval("""({
        imgs: document.querySelectorAll('img').length,
        sensorImgs: document.querySelectorAll('#sensors img').length,
        scripts: [...document.querySelectorAll('script')].length,
        bold: document.querySelectorAll('#sensors b').length,
        pwned: typeof window.pwned,
        pwned2: typeof window.pwned2,
        title: document.title,
    })""")
    assert found["sensorImgs"] == 0 and found["imgs"] == 0, found
    assert found["scripts"] == 1, f"a <script> element appeared: {found}"
    assert found["bold"] == 0, found
    assert found["pwned"] == "undefined" and found["pwned2"] == "undefined", found
    assert "pwned" not in found["title"], found
    assert found["title"] == f"tidegate · {cfg.gateway_id}", found

    # A long value stays inside its table's own scrolling section on a phone.
    chromium.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
                  deviceScaleFactor=2, mobile=True)
    chromium.next_frame()
    layout = chromium.poll(
        "({inner: window.innerWidth, scroll: document.documentElement.scrollWidth})",
        lambda v: v["inner"] == 390, timeout=5, what="the phone viewport applied")
    assert layout["scroll"] <= 392, f"the page scrolls sideways on a 390 px phone: {layout}"
    assert gw.running()


def test_real_prometheus_scrapes_the_gateway(make_config, start_gateway, tmp_path):
    if not PROMETHEUS:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    sensors = [sequence_sensor("tank.level", values=[12.5, 13], interval="200ms", unit="cm")]
    cfg, gw, base = start_http_gateway(make_config, start_gateway, sensors)
    target = base.removeprefix("http://")

    folder = Path(tempfile.mkdtemp(prefix="tidegate-it-prometheus."))
    conf = folder / "prometheus.yml"
    conf.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tidegate
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["{target}"]
""")
    prom_port = free_port()
    log_path = folder / "prometheus.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{prom_port}/api/v1"

    def query(q: str) -> list[dict]:
        try:
            status, _, body = http_get(f"{api}/query?query={urllib.parse.quote(q)}", 3)
        except OSError:
            return []
        if status != 200:
            return []
        doc = json.loads(body)
        return doc["data"]["result"] if doc.get("status") == "success" else []

    def targets() -> str:
        try:
            return http_get(f"{api}/targets", 3)[2].decode(errors="replace")
        except OSError as e:
            return str(e)

    try:
        def events_in():
            if proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({proc.returncode}):\n"
                                     f"{log_path.read_text(errors='replace')}")
            res = query("tidegate_events_in_total")
            return res if res and float(res[0]["value"][1]) > 0 else None
        try:
            res = wait_until(events_in, 30, interval=0.25,
                             what="tidegate_events_in_total > 0 in Prometheus")
        except AssertionError as e:
            raise AssertionError(f"{e}\ntargets: {targets()}") from None
        assert res[0]["metric"]["job"] == "tidegate" and res[0]["metric"]["instance"] == target
        up = query('up{job="tidegate"}')
        assert up and up[0]["value"][1] == "1", f"{up}\ntargets: {targets()}"
        level = query('tidegate_sensor_value{sensor="tank.level"}')
        assert level and float(level[0]["value"][1]) in (12.5, 13.0), level
        info = query("tidegate_build_info")
        assert info and info[0]["metric"].get("version"), info
        # Prometheus found nothing to complain about in the scrape.
        health = json.loads(targets())["data"]["activeTargets"]
        assert [t["health"] for t in health] == ["up"], health
        assert not health[0]["lastError"], health
    finally:
        stop_process(proc, 10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
    assert gw.running()


def test_promtool_accepts_live_metrics(make_config, start_gateway, tmp_path):
    if not PROMTOOL:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    mode = tmp_path / "mode"
    write_atomically(mode, "eco\n")
    sensors = [
        sequence_sensor("boiler.temp", values=[61, 62.5], interval="200ms", unit="°C"),
        {"name": "door.open", "driver": "simulated", "type": "boolean", "interval": "200ms",
         "options": {"profile": "sequence", "values": [1]}},
        {"name": "boiler.mode", "driver": "file", "type": "string", "interval": "200ms",
         "options": {"path": str(mode)}},
    ]
    outputs = [
        {"name": "pump", "driver": "file", "options": {"path": str(tmp_path / "pump"),
                                                        "initial": "off"}},
        {"name": "fan", "driver": "file", "options": {"path": str(tmp_path / "fan"),
                                                       "initial": "off"}},
    ]
    rules = """rules:
  - name: boiler_hot
    when: boiler.temp > 60
    actions:
      - output: { name: pump, value: on }
  - name: boiler_cold
    when: boiler.temp < 0
"""
    cfg, gw, base = start_http_gateway(make_config, start_gateway, sensors, rules, outputs)

    def metrics_with_firing():
        status, headers, body = http_get(base + "/metrics")
        text = body.decode("utf-8")
        ready = (status == 200 and 'tidegate_rule_firing{rule="boiler_hot"} 1' in text
                 and 'tidegate_output_on{output="pump"} 1' in text
                 and 'tidegate_sensor_value{sensor="door.open"}' in text)
        return (headers, text) if ready else None
    headers, text = gw.wait_until(metrics_with_firing, timeout=10,
                                  what="/metrics with boiler_hot firing and the pump on")
    ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    # A string sensor has no number to show.
    assert 'tidegate_sensor_value{sensor="boiler.mode"}' not in text, text
    assert 'tidegate_sensor_age_seconds{sensor="boiler.mode"}' in text, text
    for family in ("tidegate_events_in_total", "tidegate_outbox_depth", "tidegate_outbox_bytes",
                   "tidegate_mqtt_connected", "tidegate_uptime_seconds", "tidegate_sensor_value",
                   "tidegate_sensor_age_seconds", "tidegate_rule_firing",
                   "tidegate_rule_fired_total", "tidegate_output_on", "tidegate_build_info"):
        assert f"# HELP {family} " in text and f"# TYPE {family} " in text, family
    assert 'tidegate_rule_firing{rule="boiler_cold"} 0' in text
    assert 'tidegate_output_on{output="fan"} 0' in text

    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    problems = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not problems, \
        f"promtool check metrics: status {r.returncode}\n{problems}\n--- metrics ---\n{text}"
    assert gw.running()
