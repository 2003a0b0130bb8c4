"""The listening toolbar: playback speed (time expansion), heterodyne and band-pass.

The choices go to the :class:`~app.player.Player` and take effect at the next play (a
playing span restarts from where it is, so a change is heard at once).
"""

from __future__ import annotations

from fractions import Fraction

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QToolBar

from panns_core.audio.listening import SPEEDS

from .player import PLAYING


def speed_text(speed: float) -> str:
    if speed >= 1:
        return f"{speed:g}x"
    return f"1/{Fraction(speed).limit_denominator(100).denominator}x"


class ListeningBar(QToolBar):
    """Speed, heterodyne carrier and band-pass for the window's player."""

    def __init__(self, window) -> None:
        super().__init__("Listening", window)
        self.setObjectName("listening_bar")
        self.window_ = window
        self.player = window.player
        self.addWidget(QLabel(" Speed "))
        self.speed = QComboBox()
        for speed in SPEEDS:
            self.speed.addItem(speed_text(speed), speed)
        self.speed.setCurrentIndex(self.speed.findData(1.0))
        self.speed.setToolTip("Time expansion: slower playback lowers the pitch by the same "
                              "factor (1/10x moves 40 kHz to 4 kHz)")
        self.speed.currentIndexChanged.connect(self._on_speed)
        self.addWidget(self.speed)
        self.addSeparator()
        self.heterodyne = QCheckBox("Heterodyne")
        self.heterodyne.setToolTip("Mix with a carrier and low-pass, as a bat detector does: "
                                   "a call at f is heard at |f - carrier|")
        self.heterodyne.toggled.connect(self._on_heterodyne)
        self.addWidget(self.heterodyne)
        self.carrier = QDoubleSpinBox()
        self.carrier.setRange(0.1, 500.0)
        self.carrier.setDecimals(1)
        self.carrier.setSuffix(" kHz")
        self.carrier.setValue(40.0)
        self.carrier.setToolTip("Heterodyne carrier frequency")
        self.carrier.valueChanged.connect(self._on_heterodyne)
        self.addWidget(self.carrier)
        self.addSeparator()
        self.band = QCheckBox("Play the box's band")
        self.band.setToolTip("Band-pass playback to the frequency band of the selected "
                             "event or of the box drawn on a spectrogram")
        self.band.setChecked(self.player.band_pass)
        self.band.toggled.connect(self._on_band)
        self.addWidget(self.band)

    def step_speed(self, steps: int) -> None:
        """Slower (+1) or faster (-1) along the menu's speeds."""
        index = min(max(0, self.speed.currentIndex() + steps), self.speed.count() - 1)
        self.speed.setCurrentIndex(index)
        self.window_.statusBar().showMessage(
            f"Playback speed {self.speed.currentText()}", 3000)

    def set_speed(self, speed: float) -> None:
        index = self.speed.findData(speed)
        if index < 0:
            self.speed.addItem(speed_text(speed), speed)
            index = self.speed.count() - 1
        self.speed.setCurrentIndex(index)

    def _on_speed(self, _index: int) -> None:
        self.window_.guard(self.player.set_speed, float(self.speed.currentData()))
        self._restart()

    def _on_heterodyne(self, *_args) -> None:
        carrier = self.carrier.value() * 1000.0 if self.heterodyne.isChecked() else None
        self.window_.guard(self.player.set_heterodyne, carrier)
        self._restart()

    def _on_band(self, on: bool) -> None:
        self.player.band_pass = bool(on)

    def _restart(self) -> None:
        player = self.player
        if player.state == PLAYING:
            position, stop, band = player.position(), player._span[1], player.band
            self.window_.guard(player.play, position, stop, None, band)
