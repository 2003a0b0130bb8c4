"""Recording from an input device: crash-safe capture, levels, live tags, live detection.

Importing this package does not import sounddevice (which enumerates devices) or torch.
"""

from .devices import InputDevice, list_input_devices, resolve_input_device, supported_rates
from .levels import Level
from .recorder import Recorder, RecordingResult, State
from .tags import HotkeyTagger, TagTracker

__all__ = [
    "HotkeyTagger",
    "InputDevice",
    "Level",
    "Recorder",
    "RecordingResult",
    "State",
    "TagTracker",
    "list_input_devices",
    "resolve_input_device",
    "supported_rates",
]
