"""FlowNetC's correlation layer on the CPU: the PyTorch reference, our fused kernel (core/flow/csrc, built by
core/flow/kernels.py) and spatial-correlation-sampler 0.5.0 from PyPI, at FlowNetC's settings: max displacement 20,
stride2 2, kernel 1, stride1 1, on the conv3 features of a 512x384 pair (1/8 resolution: 256 x 48 x 64), batch 4.

    python bench/correlation_speed.py [--rounds 5] [--batch 4] [--skip-memory]

Every variant returns our layer's output, (B, 441, 48, 64) normalised by C: spatial-correlation-sampler is called
with patch_size 2 (D // s2) + 1 and dilation_patch s2, and its (B, 21, 21, H, W) sum is reshaped and divided by C
(that division is part of its row). All outputs and both inputs' gradients are checked against ours before timing.
Times: warm runs (one warm-up), variants interleaved round by round, median and spread, torch's default threads.
Memory, in a child process per variant and mode: "extra" is the peak of the bytes torch's CPU allocator holds during
one call (torch.profiler's memory events), less the bytes of the tensors the call returns (the output, and both
gradients for forward+backward), in units of the output's size; "RSS" is the growth of the peak resident set over
the call (VmHWM after /proc/self/clear_refs), returned tensors included, so it also shows malloc's fragmentation.

spatial-correlation-sampler 0.5.0 as published does not build against the torch installed here (2.14): its setup.py
forces -std=c++17 where torch's headers need C++20, and it always compiles its CUDA kernel, which fails on a machine
without a GPU unless TORCH_CUDA_ARCH_LIST is set. The row here uses that same sdist built with -std=c++20 and
CPU_ONLY = True (CPATH pointing at the CUDA headers its source includes). If it is not importable, the script says why
and skips the row.
Results: printed, and bench/results/correlation_speed.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import spread

from brushstream.core.flow.correlation import correlation, correlation_backend, correlation_reference

RESULTS = Path(__file__).resolve().parent / "results" / "correlation_speed.txt"
D, S2, K, S1, DIL = 20, 2, 1, 1, 1
PEER = "spatial-correlation-sampler"


def peer_function():
    """spatial-correlation-sampler mapped onto our layer's output, or the reason it cannot run."""
    try:
        from spatial_correlation_sampler import spatial_correlation_sample
    except Exception as exc:  # noqa: BLE001  (not installed, or its compiled backend does not load)
        return None, f"{type(exc).__name__}: {exc}"
    patch = 2 * (D // S2) + 1

    def run(a, b):
        out = spatial_correlation_sample(a, b, kernel_size=K, patch_size=patch, stride=S1, padding=0, dilation=DIL,
                                         dilation_patch=S2)
        return out.reshape(a.shape[0], patch * patch, *out.shape[-2:]) / a.shape[1]
    return run, None


def variants() -> tuple[dict, str | None]:
    table = {"reference": lambda a, b: correlation_reference(a, b, D, S2, K, S1, DIL),
             "fused (ours)": lambda a, b: correlation(a, b, D, S2, K, S1, DIL)}
    peer, why = peer_function()
    if peer is not None:
        table[PEER] = peer
    return table, why


def inputs(batch: int, grad: bool = False, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(batch, 256, 48, 64, generator=gen).requires_grad_(grad) for _ in range(2))
    return a, b


def forward_backward(run, a, b, grad_out):
    a, b = a.detach().requires_grad_(), b.detach().requires_grad_()
    out = run(a, b)
    out.backward(grad_out)
    return out.detach(), a.grad, b.grad


def child(label: str, mode: str, batch: int) -> None:
    """Runs one call of one variant and prints its memory figures (see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile
    table, _ = variants()
    run = table[label]
    small = tuple(x[:, :16, :12, :16].contiguous() for x in inputs(1, seed=1))
    forward_backward(run, *small, torch.ones(1, 441, 12, 16))   # loads code paths and thread pools
    a, b = inputs(batch)
    grad_out = torch.ones(batch, 441, 48, 64) if mode == "fwdbwd" else None

    def status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {key} in /proc/self/status")
    def call():
        if mode == "fwd":
            with torch.no_grad():
                return (run(a, b),)
        return forward_backward(run, a, b, grad_out)
    Path("/proc/self/clear_refs").write_text("5")   # resets VmHWM to the current resident set
    before = status("VmRSS:")
    results = call()
    rss = status("VmHWM:") - before
    del results
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        results = call()
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(str(Path(tmp) / "trace.json"))
        events = json.loads((Path(tmp) / "trace.json").read_text())["traceEvents"]
    # "Total Allocated" counts the bytes torch's CPU allocator holds for allocations made since the profiler started.
    live = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    print(json.dumps({"tensor_peak": max(live, default=0), "rss_growth": rss,
                      "returned": sum(t.numel() * t.element_size() for t in results),
                      "output": results[0].numel() * results[0].element_size()}))


def memory(label: str, mode: str, batch: int) -> dict | str:
    proc = subprocess.run([sys.executable, __file__, "--child", label, mode, "--batch", str(batch)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        return f"child failed: {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(table: dict, batch: int) -> list[str]:
    """Every variant's output and gradients against ours, on the benchmark's own inputs."""
    a, b = inputs(batch, seed=2)
    grad_out = torch.randn(batch, 441, 48, 64, generator=torch.Generator().manual_seed(3))
    ours = forward_backward(table["fused (ours)"], a, b, grad_out)
    lines = []
    for label, run in table.items():
        if label == "fused (ours)":
            continue
        theirs = forward_backward(run, a, b, grad_out)
        for name, x, y in zip(("output", "grad_a", "grad_b"), theirs, ours):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=lambda m, label=label, name=name: f"{label} {name}: {m}")
        err = max((x - y).abs().max().item() for x, y in zip(theirs, ours))
        lines.append(f"checked: {label} equals ours (output, grad_a, grad_b), max abs difference {err:.1e}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child, args.batch)

    backend = correlation_backend()
    if backend != "cpp":
        raise SystemExit(f"the fused kernel is not in use (backend {backend!r}): nothing to compare")
    table, why_no_peer = variants()
    lines = [f"# FlowNetC correlation, CPU: max displacement {D}, stride2 {S2}, kernel {K}, stride1 {S1}; "
             f"(B, C, H, W) = ({args.batch}, 256, 48, 64) x2 -> ({args.batch}, 441, 48, 64) float32",
             f"# torch {torch.__version__}, {torch.get_num_threads()} threads (torch default), backend {backend}, "
             f"{args.rounds} warm rounds interleaved"]
    if why_no_peer:
        lines.append(f"# {PEER}: skipped, it does not import ({why_no_peer[:200]})")
    else:
        import spatial_correlation_sampler as scs
        version = getattr(scs, "__version__", None) or _dist_version("spatial_correlation_sampler")
        lines.append(f"# {PEER} {version}: the PyPI 0.5.0 sdist built with -std=c++20, CPU_ONLY (see the docstring)")
    lines += check(table, args.batch)
    for line in lines:
        print(line, flush=True)

    fwd = {label: [] for label in table}
    both = {label: [] for label in table}
    a, b = inputs(args.batch)
    grad_out = torch.randn(args.batch, 441, 48, 64)
    for r in range(args.rounds + 1):                 # round 0 warms up
        for label, run in table.items():
            with torch.no_grad():
                began = time.perf_counter()
                run(a, b)
                took = time.perf_counter() - began
            began = time.perf_counter()
            forward_backward(run, a, b, grad_out)
            took_both = time.perf_counter() - began
            if r:
                fwd[label].append(took)
                both[label].append(took_both)
        print(f"round {r}/{args.rounds} done", flush=True)

    mem = {}
    if not args.skip_memory:
        for label in table:
            for mode in ("fwd", "fwdbwd"):
                mem[label, mode] = memory(label, mode, args.batch)

    ours = "fused (ours)"
    out_bytes = args.batch * 441 * 48 * 64 * 4

    def extra(label: str, mode: str, key: str) -> float | None:
        m = mem.get((label, mode))
        return None if not isinstance(m, dict) else m[key] - (m["returned"] if key == "tensor_peak" else 0)

    def cell(value: float | None, unit: float, width: int, suffix: str) -> str:
        return f"{'-':>{width}s}" if value is None else f"{value / unit:{width - len(suffix)}.2f}{suffix}"
    table_lines = [f"{'variant':28s} {'fwd s':>7s} {'fwd+bwd s':>9s} {'f+b / ours':>10s} {'extra fwd':>9s} "
                   f"{'extra f+b':>9s} {'RSS fwd':>9s} {'RSS f+b':>9s}   spread fwd | fwd+bwd (s)"]
    for label in table:
        ratio = statistics.median(both[label]) / statistics.median(both[ours])
        table_lines.append(
            f"{label:28s} {statistics.median(fwd[label]):7.3f} {statistics.median(both[label]):9.3f} {ratio:9.1f}x "
            f"{cell(extra(label, 'fwd', 'tensor_peak'), out_bytes, 9, 'x')} "
            f"{cell(extra(label, 'fwdbwd', 'tensor_peak'), out_bytes, 9, 'x')} "
            f"{cell(extra(label, 'fwd', 'rss_growth'), 2**20, 9, 'M')} "
            f"{cell(extra(label, 'fwdbwd', 'rss_growth'), 2**20, 9, 'M')}   "
            f"{spread(fwd[label])} | {spread(both[label])}")
    summary = []
    if PEER in table:
        summary.append(f"{PEER} / ours, forward+backward time: "
                       f"{statistics.median(both[PEER]) / statistics.median(both[ours]):.1f}x (goal >= 3x); forward: "
                       f"{statistics.median(fwd[PEER]) / statistics.median(fwd[ours]):.1f}x")
    summary.append(f"reference / ours, forward+backward time: "
                   f"{statistics.median(both['reference']) / statistics.median(both[ours]):.1f}x; forward: "
                   f"{statistics.median(fwd['reference']) / statistics.median(fwd[ours]):.1f}x")
    if mem:
        ours_fwd, ours_both = extra(ours, "fwd", "tensor_peak"), extra(ours, "fwdbwd", "tensor_peak")
        summary += [
            "extra fwd / f+b: peak bytes held by torch's CPU allocator during one call (torch.profiler memory events, "
            "'Total Allocated') minus the bytes of the tensors the call returns (output; and both gradients for f+b), "
            f"in units of the output ({out_bytes / 2**20:.1f} MiB).",
            "RSS fwd / f+b: growth of the peak resident set over the call, in MiB, output and gradients included "
            "(VmHWM after /proc/self/clear_refs, a child process per variant); it adds malloc's fragmentation.",
        ]
        if ours_fwd is not None and ours_both is not None:
            summary.append(f"ours: {ours_fwd / 2**20:.1f} MiB extra in forward, {ours_both / 2**20:.1f} MiB in "
                           f"forward+backward (goal: no more than the output), plus one row buffer per thread outside "
                           f"torch's allocator ({(64 * 441 * 4 + 441 * 16) / 2**10:.0f} KiB at most)")
        summary += [f"memory {label} {mode}: {m}" for (label, mode), m in mem.items() if not isinstance(m, dict)]
    report = lines + [""] + table_lines + [""] + summary
    print("\n".join([""] + table_lines + [""] + summary))
    RESULTS.parent.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=RESULTS.parent, prefix=".correlation_speed.", delete=False) as tmp:
        tmp.write("\n".join(report) + "\n")
    os.replace(tmp.name, RESULTS)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "(version unknown)"


if __name__ == "__main__":
    main()
