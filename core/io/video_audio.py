"""Carrying a source's audio into a video being written: packet copy when possible, else trimmed AAC."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import BrushstreamError, reason

# Audio codecs the MP4/QuickTime muxers take as they are; Matroska takes anything.
COPY_CODECS = {
    ".mp4": {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"},
}
AAC_FRAME = 1024          # samples per AAC frame (the encoder's frame_size)
AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
GAP_SLACK = 0.01          # seconds of timestamp jitter treated as contiguous audio
MAX_GAP = 60.0            # a longer jump is a broken timestamp, not a minute of silence to write


@dataclass(frozen=True)
class AudioSource:
    """The audio to carry into the output."""
    path: Path
    start: float = 0.0          # source seconds where the output starts
    end: float | None = None    # source seconds where it ends (None: to the end)



def _video_origin(container) -> float:
    """Source time 0 is the first video frame, as VideoReader reports it; audio-only files start at 0."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic and stream.start_time is not None:
            return float(stream.start_time * stream.time_base)
    return 0.0


class AudioCarrier:
    """Reads one source's audio lazily and muxes it into ``output`` up to the video's current time.

    Only a decoded chunk or a few packets are held at a time, so memory stays flat for any length.
    ``active`` is False when the source has no audio stream (the video is then written silent).
    """

    def __init__(self, output, source: AudioSource, suffix: str):
        self.source = source
        self.active = False
        self._input = None
        if os.path.isdir(source.path):  # an image-sequence source has no sound to carry
            return
        try:
            self._input = av.open(str(source.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise BrushstreamError(f"{source.path}: cannot read the audio ({reason(exc)})") from None
        if not self._input.streams.audio:
            self.close()
            return
        self.active = True
        self._in = self._input.streams.audio[0]
        self._origin = _video_origin(self._input)
        whole = source.start == 0 and source.end is None
        codec = self._in.codec_context.name
        self._copy = whole and (suffix == ".mkv" or codec in COPY_CODECS.get(suffix, ()))
        if self._copy:
            try:
                self._out = output.add_stream_from_template(self._in)
            except ValueError:  # the muxer refuses this codec after all
                self._copy = False
        if not self._copy and source.start > 0:
            self._seek(source.start + self._origin - 1.0)  # decoding from the file's start would be wasted work
        self._packets = self._input.demux(self._in)
        if self._copy:
            self._shift = round(self._origin / self._in.time_base)
            self._pending = None
            return
        channels = self._in.codec_context.channels or 2
        self._layout = "mono" if channels == 1 else "stereo"  # more channels are downmixed: keep it simple
        rate = self._in.codec_context.sample_rate or 48000
        self._rate = rate if rate in AAC_RATES else 48000
        self._out = output.add_stream("aac", rate=self._rate, layout=self._layout)
        self._out.codec_context.time_base = Fraction(1, self._rate)
        self._out.codec_context.bit_rate = 96_000 * (2 if channels > 1 else 1)
        self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
        self._chunks = self._decoded_chunks()
        self._fifo = av.AudioFifo()
        self._fifo_end = 0      # output sample index just after the last sample in the FIFO
        self._encoded = 0       # output sample index of the next sample to encode
        self._limit = None if source.end is None else round((source.end - source.start) * self._rate)
        self._exhausted = False

    def _seek(self, seconds: float) -> None:
        """Jump near ``seconds``; whatever comes before the output's start is cut sample-accurately later."""
        if seconds <= 0:
            return
        try:
            self._input.seek(int(seconds / self._in.time_base), stream=self._in, backward=True)
        except (av.error.FFmpegError, OSError):
            self._input.close()  # some files cannot seek: read from the start instead
            self._input = av.open(str(self.source.path))
            self._in = self._input.streams.audio[0]

    # -- reading ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self):
        try:
            yield
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise BrushstreamError(f"{self.source.path}: cannot read the audio ({reason(exc)})") from None

    def _decoded_chunks(self):
        """(output sample index or None, planar float32 samples) for every resampled chunk."""
        for packet in self._packets:
            for frame in self._in.decode(packet):
                yield from self._resampled(frame)
        yield from self._resampled(None)

    def _resampled(self, frame):
        for out in self._resampler.resample(frame):
            pos = None
            if out.pts is not None and out.time_base is not None:
                source_time = float(out.pts * out.time_base) - self._origin
                pos = round((source_time - self.source.start) * self._rate)
            yield pos, out.to_ndarray()

    def _add_chunk(self, pos: int | None, data: np.ndarray) -> None:
        """Place a chunk at its output position: cut what lies before 0 or after the end, pad gaps with silence."""
        jump = None if pos is None else pos - self._fifo_end
        # Jitter is smoothed only between chunks: the first one must land exactly, or sync drifts by it.
        if jump is None or self._fifo_end and (abs(jump) <= GAP_SLACK * self._rate or jump > MAX_GAP * self._rate):
            pos = self._fifo_end
        if pos > self._fifo_end:  # a gap in the source (or audio starting after the video): silence
            self._push(np.zeros((data.shape[0], pos - self._fifo_end), np.float32))
        skip = self._fifo_end - pos  # overlap with what we have, or samples before the output's start
        data = data[:, skip:] if skip > 0 else data
        if self._limit is not None:
            data = data[:, : max(0, self._limit - self._fifo_end)]
        if data.shape[1]:
            self._push(data)

    def _push(self, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=self._layout)
        frame.sample_rate = self._rate
        self._fifo.write(frame)
        self._fifo_end += data.shape[1]

    # -- writing ---------------------------------------------------------------------------------
    def _encode(self, frame, mux) -> None:
        if frame is not None:
            frame.pts, frame.time_base, frame.sample_rate = self._encoded, Fraction(1, self._rate), self._rate
            self._encoded += frame.samples
        for packet in self._out.encode(frame):
            mux(packet)

    def pump(self, until: float, mux) -> None:
        """Mux audio up to output time ``until`` (seconds), never past it."""
        if not self.active:
            return
        if self._copy:
            self._copy_until(until, mux)
            return
        target = round(until * self._rate)
        if self._limit is not None:
            target = min(target, self._limit)
        with self._reading():
            while self._fifo_end < target and not self._exhausted:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._exhausted = True
                else:
                    self._add_chunk(*chunk)
        while self._encoded + AAC_FRAME <= min(target, self._fifo_end):
            self._encode(self._fifo.read(AAC_FRAME), mux)

    def finish(self, video_end: float, mux) -> None:
        """Mux the rest, up to the video's end: audio never outlasts the picture (a copy by under one packet)."""
        if not self.active:
            return
        if self._copy:  # a caller that wrote only part of the source may not have said where it ends
            self._copy_until(video_end, mux)
            return
        self.pump(video_end, mux)
        end = round(video_end * self._rate)
        if self._limit is not None:
            end = min(end, self._limit)
        rest = min(end, self._fifo_end) - self._encoded
        if rest > 0:
            self._encode(self._fifo.read(rest, partial=True), mux)  # AAC takes a short last frame
        self._encode(None, mux)

    def _copy_until(self, until: float, mux) -> None:
        with self._reading():
            while True:
                packet = self._pending or next(self._packets, None)
                self._pending = None
                if packet is None:
                    return
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's empty flush packet
                stamp = packet.pts if packet.pts is not None else packet.dts
                if float((stamp - self._shift) * packet.time_base) >= until:
                    self._pending = packet
                    return
                if packet.pts is not None:
                    packet.pts -= self._shift
                if packet.dts is not None:
                    packet.dts -= self._shift
                packet.stream = self._out
                mux(packet)

    def close(self) -> None:
        if self._input is not None:
            with contextlib.suppress(Exception):
                self._input.close()
            self._input = None
