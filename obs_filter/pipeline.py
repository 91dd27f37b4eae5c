"""The live pipeline: capture, stylize and output on three threads joined by one-frame slots.

Each stage works on the newest frame it can get: when the stylizer is busy, the frame captured meanwhile replaces
the one waiting (counted as dropped), so latency never builds up and the output rate is what the stylizer can
hold, up to the source's rate. The source paces itself (a camera at its frame rate, a file in real time), so the
target fps is enforced where frames are made. A source that goes away is retried with backoff while the
output keeps its last frame; a sink that fails on one frame is counted and goes on.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .slots import LatestSlot
from .sources import FrameSource, SourceLost
from .stamp import stamp
from .stats import FrameTimes, LiveStats

log = logging.getLogger("brushstream.obs")


@dataclass
class _Captured:
    index: int
    started: float
    done: float
    rgb: np.ndarray


@dataclass
class _Stylized:
    times: FrameTimes
    rgb: np.ndarray


class LivePipeline:
    def __init__(self, source: FrameSource, stylizer, sink, *, overlay: bool = False, stamp_frames: bool = False,
                 on_frame: Callable[[FrameTimes], None] | None = None, stats_window: int = 300):
        self.source, self.stylizer, self.sink = source, stylizer, sink
        self.overlay, self.stamp_frames, self.on_frame = overlay, stamp_frames, on_frame
        self._stats_window = stats_window
        self.stats = LiveStats(stats_window)
        self._captured: LatestSlot[_Captured] = LatestSlot()
        self._stylized: LatestSlot[_Stylized] = LatestSlot()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        # The times of each stamped frame sent (bounded): the end-to-end latency probe looks them up by counter.
        self.sent_at: collections.OrderedDict[int, FrameTimes] = collections.OrderedDict()
        self._counter = 0

    # -- threads ------------------------------------------------------------------------------------------------
    def _capture(self, first: np.ndarray) -> None:
        index, backoff = 0, 0.25
        self._captured.put(_Captured(0, time.perf_counter(), time.perf_counter(), first))
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                rgb = self.source.read()
            except SourceLost as exc:
                log.warning("%s; retrying in %.1f s", exc, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 8.0)
                try:
                    self.source.reopen()
                except SourceLost:
                    pass
                continue
            backoff = 0.25
            index += 1
            self._captured.put(_Captured(index, started + self.source.waited, time.perf_counter(), rgb))
            self.stats.dropped_capture = self._captured.dropped

    def _stylize(self) -> None:
        while not self._stop.is_set():
            item = self._captured.take(timeout=0.1)
            if item is None:
                continue
            begun = time.perf_counter()
            out = self.stylizer(item.rgb)
            done = time.perf_counter()
            label = self.stylizer.current.label
            counter = -1
            if self.stamp_frames:
                counter = self._counter
                stamp(out, counter)
            if self.overlay:
                self.stats.overlay(out, label)
            times = FrameTimes(item.index, item.started, item.done, begun, done, style=label, stamp=counter)
            self._stylized.put(_Stylized(times, out))
            self.stats.dropped_output = self._stylized.dropped
            self._counter += 1

    def _output(self) -> None:
        while not self._stop.is_set():
            item = self._stylized.take(timeout=0.1)
            if item is None:
                continue
            try:
                self.sink.send(item.rgb)
            except Exception as exc:   # one bad frame must not end a live show: counted, logged once per kind
                self.stats.sink_errors += 1
                if self.stats.sink_errors == 1:
                    log.warning("%s: %s", self.sink.name, exc)
                continue
            item.times.sent = time.perf_counter()
            if item.times.stamp >= 0:
                self.sent_at[item.times.stamp] = item.times
                if len(self.sent_at) > 4096:
                    self.sent_at.popitem(last=False)
            self.stats.record(item.times)
            if self.on_frame is not None:
                self.on_frame(item.times)

    def _guard(self, target: Callable, *args) -> Callable:
        def run():
            try:
                target(*args)
            except BaseException as exc:   # a stage that dies stops the pipeline; run() reports it
                self.error = exc
                self._stop.set()
        return run

    # -- life -------------------------------------------------------------------------------------------------------
    def start(self) -> float:
        """Warm every style on the first real frame, then start the threads; returns the warm-up seconds."""
        began = time.perf_counter()
        first = self.source.read()
        self.stylizer.warm(first)
        warm = time.perf_counter() - began
        self.stats = LiveStats(self._stats_window)   # figures count from the stream's start, not the warm-up
        for name, target, args in (("capture", self._capture, (first,)), ("stylize", self._stylize, ()),
                                   ("output", self._output, ())):
            thread = threading.Thread(target=self._guard(target, *args), name=f"brushstream-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return warm

    def wait(self, seconds: float | None = None, report_every: float = 0.0,
             report: Callable[[str], None] = log.info) -> None:
        """Block until ``seconds`` have passed, a stage failed, or stop(); report the figures every few seconds."""
        end = None if seconds is None else time.perf_counter() + seconds
        next_report = time.perf_counter() + report_every
        while not self._stop.is_set():
            now = time.perf_counter()
            if end is not None and now >= end:
                break
            timeout = 0.2 if end is None else max(min(0.2, end - now), 0.0)
            self._stop.wait(timeout)
            if report_every and time.perf_counter() >= next_report:
                report(self.stats.line())
                next_report += report_every
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stop.set()
        self._captured.close()
        self._stylized.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.source.close()
        self.sink.close()
