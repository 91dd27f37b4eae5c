"""Screenshot each example workflow loaded in ComfyUI's web page, with the output it produced: docs/comfyui_NAME.png.

Starts the pinned ComfyUI with the pack (host_tests/comfyui_host.py), opens its page in headless Chromium, and for
each UI-format workflow in example_workflows/ loads it into the graph, checks that the page would queue the same
values as its API twin, queues the twin over HTTP under the page's own client id (so the page receives the run's
outputs and shows them in its output nodes: images, or a video paused at a fixed frame), waits for the run, fits
the graph to the view and saves a screenshot. Needs Debian's chromium (`apt-get install -y --no-install-recommends
chromium`); talks to it over the DevTools protocol with websocket-client (no Selenium, no driver).

    python tools/screenshot_workflows.py            # every workflow, ~3-5 min on 2 CPU cores
    python tools/screenshot_workflows.py --only image_arbitrary_style --only video_temporal
"""
from __future__ import annotations

import argparse
import base64
import json
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

from brushstream.core.io.atomic import atomic_path

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
VIDEO_FRAME_S = 2.0   # where video previews are paused for the screenshot (at most half the clip)


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
    """Readers never see a half-written PNG (the project's own atomic write)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


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

# True once every output node named shows its output: images the canvas draws (node.imgs) or, for a video
# (SaveVideo's output is marked animated), the <video> element the frontend puts over the node, with a frame decoded.
OUTPUTS_SHOWN = """((ids) => ids.every((id) => {
  const node = app.graph.getNodeById(Number(id));
  if (!node) return false;
  const video = node.videoContainer && node.videoContainer.querySelector('video');
  if (video) return video.readyState >= 2 && video.videoWidth > 0;
  return node.imgs && node.imgs.length > 0 && node.imgs.every((im) => im.complete && im.naturalWidth > 0);
}))(%s)"""

# Videos autoplay in a loop: stop each one at the same moment so reruns give the same picture.
HOLD_VIDEOS = """(async () => {
  const videos = [...document.querySelectorAll('video')];
  await Promise.all(videos.map((v) => new Promise((done) => {
    v.pause();
    v.addEventListener('seeked', done, {once: true});
    setTimeout(done, 3000);
    v.currentTime = Math.min(%f, (v.duration || 0) / 2);
  })));
  return videos.length;
})()"""

# Pairs of nodes that cover each other on screen (node boxes, and DOM widgets such as a video preview, which can
# spill out of their node): the workflow's layout leaves too little room; the screenshot would hide a title.
OVERLAPS = """(() => {
  const ds = app.canvas.ds, c = app.canvas.canvas.getBoundingClientRect();
  const boxes = app.graph.nodes.map((n) => {
    const r = n.boundingRect, [x, y] = ds.convertOffsetToCanvas([r[0], r[1]]);
    const rects = [[c.left + x, c.top + y, c.left + x + r[2] * ds.scale, c.top + y + r[3] * ds.scale]];
    for (const w of n.widgets || []) {
      const e = w.element && w.element.isConnected ? w.element.getBoundingClientRect() : null;
      if (e && e.width > 0 && e.height > 0) rects.push([e.left, e.top, e.right, e.bottom]);
    }
    return {name: `${n.title} (node ${n.id})`, rects};
  });
  // The smaller side of the intersection, in graph units (0: none)
  const cover = (a, b) => Math.max(0, Math.min(Math.min(a[2], b[2]) - Math.max(a[0], b[0]),
                                               Math.min(a[3], b[3]) - Math.max(a[1], b[1])) / ds.scale);
  const pairs = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
    const most = Math.max(...a.rects.flatMap((ra) => b.rects.map((rb) => cover(ra, rb))));
    if (most > 2) pairs.push(`${a.name} and ${b.name} by ${Math.round(most)} px`);
  }));
  return pairs;
})()"""

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


def prompt_differences(api: dict[str, Any], page: dict[str, Any]) -> list[str]:
    """Inputs the API twin sets that the page's own prompt gives another value (inputs only the page has, such as
    optional widgets left empty, are not compared)."""
    found = []
    for node_id, node in api.items():
        got = page.get(node_id)
        if got is None:
            found.append(f"node {node_id} ({node['class_type']}) missing")
            continue
        for name, value in node["inputs"].items():
            if got["inputs"].get(name) != value:
                found.append(f"node {node_id} {node['class_type']}.{name} = {got['inputs'].get(name)!r} "
                             f"in the page, {value!r} in the API twin")
    return found


def shoot(comfy: Any, browser: Chromium, ui_path: Path, out_path: Path, timeout: float, zoom: float,
          allow_mismatch: bool = False) -> str:
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
    # Frontend 1.27.10 throws once at start-up on a fresh profile (a setting's onChange sets a setting not yet
    # registered); harmless, so only exceptions from here on are quoted in failures.
    browser.errors.clear()
    browser.evaluate(DISMISS)
    browser.evaluate(f"app.loadGraphData({json.dumps(workflow)}, true, false, {json.dumps(name)})"
                     ".then(() => true)")
    loaded = browser.evaluate("app.graph.nodes.length")
    if loaded != len(workflow["nodes"]):
        raise Failure(f"{ui_path.name}: the page shows {loaded} nodes, the workflow has {len(workflow['nodes'])}")
    # The page must show the values that will run: compare the prompt it would queue with the API twin.
    differences = prompt_differences(prompt, browser.evaluate("app.graphToPrompt().then((p) => p.output)"))
    # The usual cause: a widget the frontend adds (e.g. control_after_generate after an INT named seed) that the
    # file's positional widgets_values lacks, so every later value lands one widget off.
    page_values = {n["id"]: len(n.get("widgets_values") or [])
                   for n in browser.evaluate("app.graph.serialize().nodes")}
    differences += [f"node {n['id']} {n['type']} has {page_values.get(n['id'])} widget values in the page, "
                    f"{len(n.get('widgets_values') or [])} in the file" for n in workflow["nodes"]
                    if differences and page_values.get(n["id"]) != len(n.get("widgets_values") or [])]
    if differences:
        message = (f"{ui_path.name} loads in the page as another prompt than {api_path.name}: "
                   f"{'; '.join(differences[:4])}{'; ...' if len(differences) > 4 else ''}")
        if not allow_mismatch:
            raise Failure(message + " (fix the workflow, or pass --allow-mismatch)")
        print(f"warning: {message}", file=sys.stderr, flush=True)
    # Fit before the run too: the canvas loads a node's output images only when it draws that node, so a node
    # off-screen at the default view would never show them.
    browser.evaluate(FIT_VIEW % zoom)

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
        raise Failure(f"{api_path.name} ran but no node output an image or a video")

    how = "from the page's websocket"
    try:
        browser.wait_for(OUTPUTS_SHOWN % json.dumps(shown), 30, "the outputs in the page")
    except Failure:
        # Fallback: hand the page the outputs from /history as the 'executed' events it would have received.
        how = "from /history (the page missed the events)"
        for node_id in shown:
            detail = {"node": node_id, "display_node": node_id, "output": entry["outputs"][node_id],
                      "prompt_id": prompt_id}
            browser.evaluate(f"app.api.dispatchCustomEvent('executed', {json.dumps(detail)})")
        browser.wait_for(OUTPUTS_SHOWN % json.dumps(shown), 30, "the outputs in the page")

    browser.evaluate(DISMISS)
    # Progress bars and the 'running' outline fade after the run; give them a moment before framing. Fit again:
    # nodes that now show images may have grown.
    time.sleep(1.0)
    browser.evaluate(FIT_VIEW % zoom)
    browser.evaluate(HOLD_VIDEOS % VIDEO_FRAME_S)
    time.sleep(1.0)   # images decoded, text laid out: let a few more frames draw
    overlaps = browser.evaluate(OVERLAPS)
    if overlaps:   # a layout problem of the workflow file, not of this run: warn, still take the picture
        print(f"warning: {ui_path.name}: nodes overlap in the page: {'; '.join(overlaps)}", file=sys.stderr,
              flush=True)
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
    ap.add_argument("--allow-mismatch", action="store_true",
                    help="screenshot even when the page's widget values differ from the API twin's (warns)")
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
                how = shoot(comfy, browser, path, out, args.timeout, args.zoom, args.allow_mismatch)
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
