"""Playback through sounddevice: play/pause/stop, a span or to the end, loop, cursor.

The PortAudio callback only copies from a queue that a feeder thread fills with short
blocks read from the file (so a 60-minute file is never loaded whole); the Qt side
polls the played-frame counter on a timer and moves the document's cursor. With no
output device the player says so once and runs a silent clock, so the cursor still
moves and nothing else breaks.

Listening closely (:mod:`panns_core.audio.listening`, run by the feeder): ``speed``
expands time (1/20x to 2x, the pitch going down with the speed), ``carrier_hz`` turns on
heterodyne playback, and with ``band_pass`` on, a box's band (a selected event's, or the
band of a box drawn on a spectrogram) is all that is played. The document's channel is
the one played (None: the mix).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from .model import Document

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.5
QUEUE_BLOCKS = 6
STOPPED, PLAYING, PAUSED = "stopped", "playing", "paused"


class _Feeder(threading.Thread):
    """Reads [start, stop) (looping if asked) into a queue of float32 blocks."""

    def __init__(self, path, start: float, stop: float, loop: bool, sample_rate: int,
                 chain=None, channel: int | None = None) -> None:
        super().__init__(daemon=True, name="player-feeder")
        self.path, self.start_s, self.stop_s, self.loop = path, start, stop, loop
        self.sample_rate = sample_rate
        self.chain = chain  # ListeningChain or None (samples as they are)
        self.channel = channel
        self.blocks: queue.Queue = queue.Queue(QUEUE_BLOCKS)
        self.halt = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        from panns_core.display.envelope import read_samples

        try:
            while not self.halt.is_set():
                t = self.start_s
                while t < self.stop_s and not self.halt.is_set():
                    t1 = min(self.stop_s, t + BLOCK_SECONDS)
                    block, _sr = read_samples(self.path, t, t1, self.channel)
                    if not len(block):
                        break
                    last = t1 >= self.stop_s and not self.loop
                    if self.chain is not None:
                        block = self.chain.process(block, last=last)
                    if len(block):
                        self._put(block)
                    t = t1
                if not self.loop:
                    break
            self._put(None)  # end marker
        except Exception as error:  # surfaced by the player on the Qt thread
            self.error = error
            self._put(None)

    def _put(self, item) -> None:
        while not self.halt.is_set():
            try:
                self.blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


class Player(QObject):
    """Plays the document's current recording; see the module docstring."""

    state_changed = Signal(str)
    message = Signal(str)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.state = STOPPED
        self.loop = False
        self.device = None  # sounddevice output device (None: the system default)
        self.device_ok: bool | None = None
        self.speed = 1.0  # time expansion: 0.1 plays ten times slower and ten times lower
        self.carrier_hz: float | None = None  # heterodyne carrier (None: off)
        self.band_pass = True  # play only a box's band
        self.band: tuple[float, float] | None = None  # the band playing now
        self._stream = None
        self._feeder: _Feeder | None = None
        self._frames = 0  # frames handed to the device since the segment (re)started
        self._pending: np.ndarray | None = None
        self._finished = threading.Event()
        self._span = (0.0, 0.0)
        self._rate = 1
        self._clock_start = 0.0  # for the silent clock
        self._paused_at = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._tick)
        document.events.recording.connect(self._on_recording)

    # ------------------------------------------------------------------ public
    def toggle(self) -> None:
        """Space bar: play from the cursor (or the time selection), pause, resume."""
        if self.state == PLAYING:
            self.pause()
        elif self.state == PAUSED:
            self.resume()
        else:
            self.play()

    def play(self, start: float | None = None, stop: float | None = None,
             loop: bool | None = None, band: tuple[float, float] | None = None) -> None:
        """Play ``[start, stop)``; defaults: the time selection (band-passed to the box's
        band when one was drawn), else cursor to the end. ``band`` (Hz) band-passes."""
        doc = self.document
        rec = doc.recording
        if rec is None:
            return
        if start is None:
            if doc.time_selection is not None:
                start, stop = doc.time_selection
                if band is None and self.band_pass:
                    band = doc.viewport.band_selection
            else:
                start = doc.cursor if doc.cursor < doc.duration - 0.05 else 0.0
        stop = doc.duration if stop is None else min(stop, doc.duration)
        if stop - start <= 0.0:
            return
        from panns_core.audio.listening import ListeningChain, ListeningSettings

        # made first: settings this recording cannot play leave the player as it was
        chain = ListeningChain(rec.sample_rate or 1, ListeningSettings(
            speed=self.speed, band=band, carrier_hz=self.carrier_hz))
        self.stop(move_cursor=False)
        if loop is not None:
            self.loop = loop
        self._span = (float(start), float(stop))
        self.band = band
        self._rate = chain.out_rate
        self._speed = self.speed
        self._frames = 0
        self._pending = None
        self._finished.clear()
        self._feeder = _Feeder(rec.path, start, stop, self.loop, rec.sample_rate or 1,
                               None if chain.passthrough else chain, doc.channel)
        self._feeder.start()
        self._open_stream()
        self._clock_start = time.monotonic()
        self._set_state(PLAYING)
        self._timer.start()

    def play_event(self, event_id: int) -> None:
        """Play an event (only its band, when it has one and ``band_pass`` is on)."""
        row = self.document.event(event_id)
        band = None
        low, high = float(row["low_freq"]), float(row["high_freq"])
        if self.band_pass and not (math.isnan(low) and math.isnan(high)):
            band = (0.0 if math.isnan(low) else low,
                    self.document.nyquist() if math.isnan(high) else high)
        self.play(float(row["onset"]), float(row["offset"]), band=band)

    def set_speed(self, speed: float) -> None:
        """Time expansion for the next play (1/20 to 2; checked when playing starts)."""
        from panns_core.audio.listening import ListeningSettings

        ListeningSettings(speed=float(speed))  # refuses what cannot be played
        self.speed = float(speed)

    def set_heterodyne(self, carrier_hz: float | None) -> None:
        from panns_core.audio.listening import ListeningSettings

        if carrier_hz is not None:
            ListeningSettings(carrier_hz=float(carrier_hz))
        self.carrier_hz = None if carrier_hz is None else float(carrier_hz)

    def pause(self) -> None:
        if self.state != PLAYING:
            return
        self._paused_at = self.position()
        self._close_stream()
        if self._feeder is not None:
            self._feeder.halt.set()
        self._timer.stop()
        self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state != PAUSED:
            return
        self.play(self._paused_at, self._span[1])

    def stop(self, move_cursor: bool = True) -> None:
        was = self.state
        self._timer.stop()
        self._close_stream()
        if self._feeder is not None:
            self._feeder.halt.set()
            self._feeder = None
        if was != STOPPED:
            if move_cursor:
                self.document.cursor = self._span[0]
            self._set_state(STOPPED)

    def set_loop(self, loop: bool) -> None:
        self.loop = bool(loop)

    def position(self) -> float:
        start, stop = self._span
        speed = getattr(self, "_speed", 1.0)
        if self._stream is not None:
            played = self._frames / self._rate * speed
        else:
            played = (time.monotonic() - self._clock_start) * speed
        length = max(stop - start, 1e-9)
        if self.loop:
            played = played % length
        return start + min(played, length)

    # ------------------------------------------------------------------ stream
    def _open_stream(self) -> None:
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(
                samplerate=self._rate, channels=1, dtype="float32", device=self.device,
                callback=self._callback, finished_callback=self._finished.set,
            )
            self._stream.start()
            self.device_ok = True
        except Exception as error:  # no PortAudio, no device, unsupported rate ...
            self._stream = None
            if self.device_ok is not False:
                self.message.emit(
                    f"No audio output: {error}. Playback is silent; the cursor still moves. "
                    "Connect an output device and press play again."
                )
            self.device_ok = False

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # pragma: no cover - device vanished
                log.debug("closing the output stream failed", exc_info=True)

    def _callback(self, outdata, frames, _time, _status) -> None:
        # Only copying here: no allocation beyond slicing, no I/O, no locks.
        out = outdata[:, 0]
        filled = 0
        feeder = self._feeder
        while filled < frames:
            block = self._pending
            if block is None:
                try:
                    block = feeder.blocks.get_nowait() if feeder else None
                except queue.Empty:
                    out[filled:] = 0.0  # underrun: silence, try again next time
                    self._frames += filled
                    return
                if block is None:
                    out[filled:] = 0.0
                    self._frames += filled
                    import sounddevice as sd

                    raise sd.CallbackStop
            take = min(frames - filled, len(block))
            out[filled : filled + take] = block[:take]
            self._pending = block[take:] if take < len(block) else None
            filled += take
        self._frames += filled

    # -------------------------------------------------------------------- clock
    def _tick(self) -> None:
        feeder = self._feeder
        if feeder is not None and feeder.error is not None:
            error = feeder.error
            self.stop(move_cursor=False)
            self.message.emit(f"Playback stopped: {error}")
            return
        position = self.position()
        self.document.cursor = position
        done = (self._stream is not None and self._finished.is_set()) or (
            self._stream is None and not self.loop and position >= self._span[1]
        )
        if done:
            self._timer.stop()
            self._close_stream()
            self._feeder = None
            self.document.cursor = self._span[1] if not self.loop else self._span[0]
            self._set_state(STOPPED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_recording(self, event) -> None:
        self.stop(move_cursor=False)

    def shutdown(self) -> None:
        self.stop(move_cursor=False)
