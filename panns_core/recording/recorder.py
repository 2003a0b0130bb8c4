"""Record from an input device to a crash-safe file, with pause, levels, a ring of the
last seconds for live views, and live tags.

Threads:
  * PortAudio's callback copies each block into a queue and counts input overflows.
    Nothing else: no allocation beyond the copy, no locks, no I/O.
  * One writer thread drains the queue in order: it feeds the level meter, appends the
    block to the file (unless paused), pushes it into the ring buffer, and applies the
    control messages (pause, resume, tags) that other threads put into the same queue.
    Because controls travel with the audio, a tag's time is the number of frames
    captured before the request: the sample counter, not the wall clock.
  * The caller's thread (GUI, CLI) calls start/pause/resume/stop and reads ``level()``,
    ``ring``, ``frames``.

Failures never lose what was written: the file's header is rewritten every
``sync_seconds`` of audio and whenever the queue runs dry, so a killed process leaves a
readable WAV. A write failure (disk full) or a device that stops delivering audio sets
``error`` (a PannsError saying what happened and what was kept) and ``failed``; the
caller then calls ``stop()``, which still returns the result.
"""

from __future__ import annotations

import contextlib
import enum
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.ringbuffer import RingBuffer
from ..errors import AudioError, DeviceError, PannsError
from .devices import DTYPES, InputDevice, resolve_input_device, sounddevice
from .levels import Level, LevelMeter, to_float
from .tags import TagTracker
from .writer import CrashSafeWav


class State(enum.Enum):
    IDLE = "idle"  # created, stream closed
    ARMED = "armed"  # stream running, meter live, nothing written yet (or paused)
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass
class RecordingResult:
    """What a finished recording left on disk."""

    path: Path
    sample_rate: int
    channels: int
    dtype: str
    frames: int
    overflows: int
    tags: Any  # events DataFrame (panns_core.events schema), human events
    error: str | None = None  # set when the recording ended because something failed
    reached_limit: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


_STOP = object()


class Recorder:
    """One recording session from one input device into one file.

    ``path`` ends in .wav (written directly) or .flac (written as a crash-safe WAV next
    to it, ``<name>.recording.wav``, and converted when the recording stops).
    ``max_seconds`` stops writing after exactly that many frames (scripted capture):
    wait for it with :meth:`wait`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device: int | str | None = None,
        sample_rate: int = 32000,
        channels: int = 1,
        dtype: str = "int16",
        blocksize: int = 1024,
        ring_seconds: float = 30.0,
        max_seconds: float | None = None,
        sync_seconds: float = 0.25,
        stall_seconds: float = 3.0,
        durable: bool = False,
    ) -> None:
        if dtype not in DTYPES:
            raise AudioError(f"Cannot record {dtype} samples; use one of {', '.join(DTYPES)}.")
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".wav", ".flac"):
            raise AudioError(
                f"Recordings are written as WAV or FLAC; {self.path.name!r} has neither "
                "extension. Use a name ending in .wav or .flac."
            )
        if suffix == ".flac" and dtype == "float32":
            raise AudioError(
                "FLAC cannot hold float samples; record float32 to a .wav file, or record "
                "int16 to FLAC."
            )
        self.device_spec = device
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.dtype = dtype
        self.blocksize = int(blocksize)
        self.max_frames = None if max_seconds is None else round(max_seconds * self.sample_rate)
        self.sync_frames = max(1, round(sync_seconds * self.sample_rate))
        self.stall_seconds = stall_seconds
        self.durable = durable
        self.work_path = self.path
        if suffix == ".flac":
            self.work_path = self.path.with_name(self.path.stem + ".recording.wav")
        self.device: InputDevice | None = None
        self.ring = RingBuffer(max(1, round(ring_seconds * self.sample_rate)), self.channels)
        self.meter = LevelMeter()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stream: Any = None
        self._writer_thread: threading.Thread | None = None
        self._file: CrashSafeWav | None = None
        self._tags = TagTracker()
        self._overflows = 0
        self._captured = 0  # frames received from the device (written or not)
        self._paused = True
        self._state = State.IDLE
        self._stopping = False
        self._error: PannsError | None = None
        self._limit_reached = False
        self._done = threading.Event()  # limit reached or failure
        self._last_block = 0.0
        self._abandoned = False

    # -- public state ----------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def frames(self) -> int:
        """Frames written to the recording so far (its sample counter)."""
        return self.ring.total

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def captured_frames(self) -> int:
        """Frames received from the device so far, written or not (paused, limit)."""
        return self._captured

    @property
    def overflows(self) -> int:
        """Input overflows reported by PortAudio (audio the device had to drop)."""
        return self._overflows

    @property
    def error(self) -> PannsError | None:
        """What went wrong (disk full, device lost), or None."""
        return self._error

    @property
    def stream_abandoned(self) -> bool:
        """True when the device did not release its stream on stop (a hung driver).

        PortAudio may then hang when it shuts down at interpreter exit; a command-line
        process should leave with ``os._exit`` after flushing its output.
        """
        return self._abandoned

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def open_tags(self) -> dict[str, float]:
        """Tags started and not yet stopped: label -> onset seconds."""
        return {k: v / self.sample_rate for k, v in dict(self._tags.open).items()}

    def level(self) -> Level:
        """Peak/RMS since the previous call (all channels), for a level meter."""
        return self.meter.read()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``max_seconds`` were recorded or the recording failed."""
        return self._done.wait(timeout)

    # -- control -----------------------------------------------------------------------
    def arm(self) -> None:
        """Open the device and start the stream without writing: the meter goes live."""
        if self._state is not State.IDLE:
            return
        self._open_stream()
        self._state = State.ARMED

    def start(self) -> None:
        """Start (or resume) writing."""
        if self._state is State.STOPPED:
            raise AudioError("This recording has stopped; start a new one.")
        if self._state is State.IDLE:
            # Write from the very first block (an unpaced device can deliver seconds of
            # audio before a queued "resume" would arrive).
            self._paused = False
            self._open_stream()
            self._state = State.RECORDING
            return
        self.resume()

    def pause(self) -> None:
        if self._state is State.RECORDING:
            self._queue.put(("pause",))
            self._state = State.PAUSED

    def resume(self) -> None:
        if self._state in (State.ARMED, State.PAUSED):
            self._queue.put(("resume",))
            self._state = State.RECORDING

    def tag_start(self, label: str) -> None:
        self._queue.put(("tag_start", label))

    def tag_stop(self, label: str) -> None:
        self._queue.put(("tag_stop", label))

    def tag_toggle(self, label: str) -> None:
        self._queue.put(("tag_toggle", label))

    def stop(self, close_timeout: float = 3.0) -> RecordingResult:
        """Stop the stream, write out everything queued, close the file; return it.

        Safe to call after a failure. If the device does not let go of its stream within
        ``close_timeout`` seconds it is abandoned (closed in the background).
        """
        if self._state is State.STOPPED:
            raise AudioError("This recording has already stopped.")
        self._stopping = True
        self._queue.put(("pause",))  # audio arriving after the request is not recorded
        self._close_stream(close_timeout)
        if self._writer_thread is not None:
            self._queue.put(_STOP)
            self._writer_thread.join()
        self._state = State.STOPPED
        self._tags.close_all(self.frames)
        frames = self._file.close() if self._file is not None else 0
        if self._file is None:
            # Nothing was ever written: still leave a valid (empty) file behind.
            CrashSafeWav(self.work_path, self.sample_rate, self.channels, self.dtype).close()
        path = self.work_path
        if self.work_path != self.path:
            path = self._convert_to_flac()
        return RecordingResult(
            path=path,
            sample_rate=self.sample_rate,
            channels=self.channels,
            dtype=self.dtype,
            frames=frames,
            overflows=self._overflows,
            tags=self._tags.events(self.sample_rate, recording=str(path)),
            error=None if self._error is None else str(self._error),
            reached_limit=self._limit_reached,
            extra={"device": None if self.device is None else self.device.name},
        )

    # -- stream --------------------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self._overflows += 1
        self._queue.put(indata.copy())

    def _finished(self) -> None:
        if not self._stopping:
            self._queue.put(("device_stopped",))

    def _open_stream(self) -> None:
        sd = sounddevice()
        self.device = resolve_input_device(self.device_spec)
        where = f"input device {self.device.name!r} (index {self.device.index})"
        if self.channels > self.device.max_channels:
            raise DeviceError(
                f"The {where} has {self.device.max_channels} input channel(s); "
                f"{self.channels} were requested. Record fewer channels."
            )
        try:
            sd.check_input_settings(
                device=self.device.index,
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype=self.dtype,
            )
        except Exception as error:
            if not self._opens_at_all(sd):
                raise DeviceError(
                    f"Cannot open the {where}: {error}. Check that it is connected and not "
                    "used by another program, or pick another device."
                ) from None
            raise DeviceError(
                f"The {where} does not accept {self.sample_rate} Hz, {self.channels} "
                f"channel(s), {self.dtype}: {error}. Pick another rate or channel count."
            ) from None
        try:
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype=self.dtype,
                blocksize=self.blocksize,
                callback=self._callback,
                finished_callback=self._finished,
            )
        except Exception as error:
            raise DeviceError(
                f"Cannot open the {where}: {error}. Check that it is connected and not "
                "used by another program, or pick another device."
            ) from None
        self._last_block = time.monotonic()
        self._writer_thread = threading.Thread(
            target=self._writer_loop, name="recorder-writer", daemon=True
        )
        self._writer_thread.start()
        try:
            self._stream.start()
        except Exception as error:
            self._stopping = True
            self._queue.put(_STOP)
            self._writer_thread.join()
            self._writer_thread = None
            with contextlib.suppress(Exception):
                self._stream.close(ignore_errors=True)
            raise DeviceError(
                f"Cannot start the {where}: {error}. Check that it is connected and not "
                "used by another program, or pick another device."
            ) from None

    def _opens_at_all(self, sd: Any) -> bool:
        """Whether the device accepts its own default settings (else it is unusable)."""
        try:
            sd.check_input_settings(
                device=self.device.index, samplerate=self.device.default_rate, channels=1
            )
        except Exception:
            return False
        return True

    def _close_stream(self, timeout: float) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def close() -> None:
            with contextlib.suppress(Exception):
                stream.stop(ignore_errors=True)
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)

        closer = threading.Thread(target=close, name="recorder-close", daemon=True)
        closer.start()
        closer.join(timeout)
        self._abandoned = closer.is_alive()

    # -- writer thread -------------------------------------------------------------------
    def _fail(self, error: PannsError) -> None:
        if self._error is None:
            self._error = error
        self._done.set()

    def _writer_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                self._idle()
                continue
            if item is _STOP:
                break
            if isinstance(item, tuple):
                self._control(item)
            else:
                self._block(item)

    def _idle(self) -> None:
        if self._file is not None and self._file.unsynced_frames:
            self._sync()
        silent = time.monotonic() - self._last_block
        if (
            not self._stopping
            and self._error is None
            and self._stream is not None
            and silent > self.stall_seconds
        ):
            self._fail(self._device_lost(f"delivered no audio for {silent:.1f} s"))

    def _device_lost(self, what: str) -> DeviceError:
        name = self.device.name if self.device else "input device"
        return DeviceError(
            f"The input device {name!r} {what} (unplugged, or taken by another program?). "
            f"Everything up to {self.seconds:.2f} s is kept in {self.work_path}. Check the "
            "device, then stop and record again."
        )

    def _control(self, item: tuple) -> None:
        kind = item[0]
        if kind == "pause":
            self._paused = True
        elif kind == "resume":
            self._paused = False
        elif kind == "tag_start":
            self._tags.start(item[1], self.frames)
        elif kind == "tag_stop":
            self._tags.stop(item[1], self.frames)
        elif kind == "tag_toggle":
            self._tags.toggle(item[1], self.frames)
        elif kind == "device_stopped":
            self._fail(self._device_lost("stopped its stream"))

    def _block(self, block: np.ndarray) -> None:
        self._last_block = time.monotonic()
        self._captured += len(block)
        self.meter.add(to_float(block))
        if self._paused or self._error is not None or self._limit_reached:
            return
        if self.max_frames is not None:
            block = block[: self.max_frames - self.frames]
        try:
            if self._file is None:
                self._file = CrashSafeWav(
                    self.work_path, self.sample_rate, self.channels, self.dtype,
                    durable=self.durable,
                )
            self._file.append(block)
        except PannsError as error:
            if self._file is not None:  # keep the ring in step with what reached the disk
                self.ring.push(to_float(block[: self._file.frames - self.frames]))
            self._fail(error)
            return
        self.ring.push(to_float(block))
        if self._file.unsynced_frames >= self.sync_frames:
            self._sync()
        if self.max_frames is not None and self.frames >= self.max_frames:
            self._limit_reached = True
            self._sync()
            self._done.set()

    def _sync(self) -> None:
        try:
            self._file.sync()
        except Exception as error:  # pragma: no cover - the header write itself failed
            self._fail(AudioError(f"Cannot update {self.work_path}: {error}."))

    # -- FLAC ----------------------------------------------------------------------------
    def _convert_to_flac(self) -> Path:
        """Encode the finished WAV as FLAC; on failure keep (and return) the WAV."""
        import soundfile

        subtype = "PCM_16" if self.dtype == "int16" else "PCM_24"
        try:
            with soundfile.SoundFile(self.work_path) as src, soundfile.SoundFile(
                self.path, "w", src.samplerate, src.channels, subtype, format="FLAC"
            ) as dst:
                for block in src.blocks(blocksize=1 << 16, dtype=self.dtype, always_2d=True):
                    dst.write(block)
                expected = src.frames
            if soundfile.info(str(self.path)).frames != expected:
                raise OSError("the FLAC file is incomplete")
        except Exception as error:
            if self._error is None:
                self._error = AudioError(
                    f"Converting the recording to FLAC failed ({error}); it is kept as "
                    f"{self.work_path}."
                )
            with contextlib.suppress(OSError):
                self.path.unlink()
            return self.work_path
        self.work_path.unlink()
        return self.path
