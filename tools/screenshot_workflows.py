"""Screenshot each example workflow loaded in ComfyUI's web page, with the output it produced: docs/comfyui_NAME.png.

Starts the pinned ComfyUI with the pack (host_tests/comfyui_host.py), opens its page in headless Chromium, and for
each UI-format workflow in example_workflows/ loads it into the graph, queues its API twin over HTTP under the
page's own client id (so the page receives the run's outputs and shows them in its output nodes), waits for the
run, fits the graph to the view and saves a screenshot. Needs Debian's `chromium`; talks to it over the DevTools
protocol with websocket-client (no Selenium, no driver).

    python tools/screenshot_workflows.py            # all workflows, ~5 min on 2 CPU cores
    python tools/screenshot_workflows.py --only image_arbitrary_style
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "example_workflows"
DOCS = REPO / "docs"
sys.path.insert(0, str(REPO / "host_tests"))

# Stored on the server before the page opens, so the fresh user profile shows no first-run UI: no templates
# browser (TutorialCompleted), no restored or default workflow racing ours (Persist off), no minimap or frame
# statistics drawn over the graph.
PAGE_SETTINGS: dict[str, Any] = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Workflow.Persist": False,
    "Comfy.Minimap.Visible": False,
    "Comfy.Graph.CanvasInfo": False,
    "Comfy.Workflow.ShowMissingModelsWarning": False,
    "Comfy.Notification.ShowVersionUpdates": False,
    "Comfy.Locale": "en",
}


class Failure(Exception):
    """Ends the run with one line on stderr and exit status 1."""


class Chromium:
    """Headless Chromium driven over the DevTools protocol: one page, JavaScript evaluation and screenshots."""

    def __init__(self, width: int, height: int, timeout: float = 60.0) -> None:
        import websocket
        exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if exe is None:
            raise Failure("no chromium on PATH: apt-get install -y --no-install-recommends chromium")
        self.profile = Path(tempfile.mkdtemp(prefix="brushstream-chromium-"))
        # Port 0: Chromium picks a free port and writes it to DevToolsActivePort in the profile folder.
        # --no-sandbox because this runs as root; the page is our own loopback server.
        cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
               "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
               f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None:
                raise Failure(f"chromium exited with {self.proc.returncode} at start-up ({' '.join(cmd)})")
            if time.monotonic() > deadline:
                raise Failure(f"chromium wrote no DevToolsActivePort within {timeout:.0f} s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        if not pages:
            raise Failure("chromium has no page target")
        # suppress_origin: Chromium refuses DevTools websockets that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self._next_id = 0
        self.errors: list[str] = []   # uncaught page exceptions, quoted when a step fails
        self.send("Runtime.enable")
        self.send("Page.enable")
        # A fixed CSS viewport at scale 1, whatever the headless window's own size ends up being.
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are skipped (exceptions are kept in self.errors)."""
        self._next_id += 1
        msg_id = self._next_id
        self.ws.settimeout(timeout)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Runtime.exceptionThrown":
                details = msg["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", "?"))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise Failure(f"DevTools {method} failed: {msg['error'].get('message')}")
                return msg.get("result", {})

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The JSON value of a JavaScript expression, awaiting it if it is a promise; a thrown error raises."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": timeout * 1000}, timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "?")
            raise Failure(f"page script failed: {text.splitlines()[0]}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                extra = f"; page errors: {self.errors[-1].splitlines()[0]}" if self.errors else ""
                raise Failure(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
            time.sleep(0.25)

    def navigate(self, url: str) -> None:
        self.errors.clear()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise Failure(f"chromium could not open {url}: {result['errorText']}")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, timeout=120)["data"])

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def post_json(url: str, data: Any, timeout: float = 60.0) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def write_atomic(path: Path, data: bytes) -> None:
    """Readers never see a half-written PNG: write a temporary sibling, then rename it over path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Wait for the page's app: window.app is set once node definitions are registered; clientId once its websocket
# got the server's first status message (runs queued under that id report their outputs to this page).
PAGE_READY = "!!(window.app && app.graph && app.canvas && app.api && app.api.clientId)"

# Close whatever dialog or toast the frontend opened on its own (there should be none with PAGE_SETTINGS).
DISMISS = """(() => {
  let n = 0;
  for (const b of document.querySelectorAll('.p-dialog .p-dialog-close-button, .p-toast .p-toast-close-button')) {
    b.click(); n++;
  }
  return n;
})()"""

# True once every output node named has its images loaded: the canvas draws node.imgs under the widgets.
IMAGES_SHOWN = """((ids) => ids.every((id) => {
  const node = app.graph.getNodeById(Number(id));
  return node && node.imgs && node.imgs.length > 0 && node.imgs.every((im) => im.complete && im.naturalWidth > 0);
}))(%s)"""

# Fit every node (title bars included) into the canvas, with a margin, then let two frames render.
FIT_VIEW = """(async () => {
  const rects = app.graph.nodes.map((n) => n.boundingRect);
  const x0 = Math.min(...rects.map((r) => r[0])), y0 = Math.min(...rects.map((r) => r[1]));
  const x1 = Math.max(...rects.map((r) => r[0] + r[2])), y1 = Math.max(...rects.map((r) => r[1] + r[3]));
  app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom: %f});
  app.canvas.setDirty(true, true);
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return app.canvas.ds.scale;
})()"""


def shoot(comfy: Any, browser: Chromium, ui_path: Path, out_path: Path, timeout: float, zoom: float) -> str:
    """Run one workflow with the page watching and save its screenshot; returns how the outputs got shown."""
    name = ui_path.stem
    api_path = ui_path.with_name(f"{name}_api.json")
    if not api_path.is_file():
        raise Failure(f"{ui_path.name} has no API twin {api_path.name}")
    workflow = json.loads(ui_path.read_text())
    prompt = json.loads(api_path.read_text())
    missing = sorted({n["type"] for n in workflow["nodes"]} - set(comfy.object_info()))
    if missing:
        raise Failure(f"{ui_path.name}: ComfyUI has no node types {', '.join(missing)} "
                      f"({comfy.pack_import_problem() or 'pack loaded'})")

    browser.navigate(comfy.url("/"))
    browser.wait_for(PAGE_READY, 120, "the ComfyUI page to start")
    time.sleep(1.0)   # the page's own start-up tasks (release check, tab restore) finish after window.app is set
    browser.evaluate(DISMISS)
    browser.evaluate(f"app.loadGraphData({json.dumps(workflow)}, true, false, {json.dumps(name)})"
                     ".then(() => true)")
    loaded = browser.evaluate("app.graph.nodes.length")
    if loaded != len(workflow["nodes"]):
        raise Failure(f"{ui_path.name}: the page shows {loaded} nodes, the workflow has {len(workflow['nodes'])}")

    # The API twin, queued over HTTP under the page's client id: the server then sends this page the 'executed'
    # events, and the page puts each output node's images in it exactly as after a run started from the page.
    client_id = browser.evaluate("app.api.clientId")
    prompt_id = str(uuid.uuid4())
    status, body = post_json(comfy.url("/prompt"), {
        "prompt": prompt, "prompt_id": prompt_id, "client_id": client_id,
        "extra_data": {"extra_pnginfo": {"workflow": workflow}}})   # the saved PNGs carry the workflow, as usual
    if status != 200:
        raise Failure(f"{api_path.name}: ComfyUI rejected the prompt (HTTP {status}): {' '.join(body.split())[:300]}")
    entry = comfy.wait(prompt_id, timeout=timeout)
    if entry["status"].get("status_str") != "success":
        errors = [m[1].get("exception_message", "").strip() for m in entry["status"].get("messages", [])
                  if m[0] == "execution_error"]
        raise Failure(f"{api_path.name} did not succeed: {errors[0] if errors else entry['status']}")
    shown = [node_id for node_id, out in entry.get("outputs", {}).items() if out.get("images")]
    if not shown:
        raise Failure(f"{api_path.name} ran but no node output an image")

    how = "from the page's websocket"
    try:
        browser.wait_for(IMAGES_SHOWN % json.dumps(shown), 20, "the output images in the page")
    except Failure:
        # Fallback: hand the page the outputs from /history as the 'executed' events it would have received.
        how = "from /history (the page missed the events)"
        for node_id in shown:
            detail = {"node": node_id, "display_node": node_id, "output": entry["outputs"][node_id],
                      "prompt_id": prompt_id}
            browser.evaluate(f"app.api.dispatchCustomEvent('executed', {json.dumps(detail)})")
        browser.wait_for(IMAGES_SHOWN % json.dumps(shown), 20, "the output images in the page")

    browser.evaluate(DISMISS)
    # Progress bars and the 'running' outline fade after the run; give them a moment before framing.
    time.sleep(1.0)
    browser.evaluate(FIT_VIEW % zoom)
    time.sleep(1.0)   # images decoded, text laid out: let a few more frames draw
    png = browser.screenshot()
    if browser.evaluate("app.graph.nodes.length") != len(workflow["nodes"]):
        raise Failure(f"{ui_path.name}: the page replaced the graph before the screenshot")
    write_atomic(out_path, png)
    return how


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="workflow name (repeatable); default: every UI workflow")
    ap.add_argument("--out-dir", type=Path, default=DOCS)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--zoom", type=float, default=0.95, help="share of the canvas the fitted graph fills")
    ap.add_argument("--timeout", type=float, default=900, help="seconds each workflow's run may take")
    args = ap.parse_args()

    paths = sorted(p for p in WORKFLOWS.glob("*.json") if not p.stem.endswith("_api"))
    if args.only:
        unknown = sorted(set(args.only) - {p.stem for p in paths})
        if unknown:
            print(f"error: no UI workflow named {', '.join(unknown)} in {WORKFLOWS}", file=sys.stderr)
            return 1
        paths = [p for p in paths if p.stem in args.only]
    if not paths:
        print(f"error: no UI workflows in {WORKFLOWS}", file=sys.stderr)
        return 1

    from comfyui_host import ComfyServer
    t0 = time.monotonic()
    browser: Chromium | None = None
    try:
        with ComfyServer() as comfy:
            problem = comfy.pack_import_problem()
            if problem:
                raise Failure(problem)
            status, body = post_json(comfy.url("/settings"), PAGE_SETTINGS)
            if status != 200:
                raise Failure(f"ComfyUI refused the page settings (HTTP {status}): {body.strip()[:200]}")
            browser = Chromium(args.width, args.height)
            for path in paths:
                t = time.monotonic()
                out = args.out_dir / f"comfyui_{path.stem}.png"
                how = shoot(comfy, browser, path, out, args.timeout, args.zoom)
                print(f"{out} {out.stat().st_size} bytes ({time.monotonic() - t:.0f} s, outputs {how})", flush=True)
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:   # server start-up, timeouts, a lost browser: still one line
        print(f"error: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    finally:
        if browser is not None:
            browser.close()
    print(f"done in {time.monotonic() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
