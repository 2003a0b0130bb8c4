"""Settings of the native-rate spectrogram: FFT size, overlap, window, frequency axis,
colours, dB range, PCEN, and the channel (shown, played and detected on)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from panns_core.display.spectrogram import FFT_SIZES, WINDOWS

from ..views.tiled import COLORMAPS

OVERLAPS = (0.0, 0.5, 0.75, 0.875, 0.9375)


class SpectrogramSettingsDialog(QDialog):
    """Edits ``window.native_spectrogram``'s settings; :meth:`apply` makes them so."""

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Spectrogram settings")
        self.window_ = window
        view = window.native_spectrogram
        s = view.settings
        form = QFormLayout(self)
        self.info = QLabel(view.describe() if window.document.recording else "")
        self.info.setWordWrap(True)
        form.addRow(self.info)
        self.fft = QComboBox()
        for n in FFT_SIZES:
            self.fft.addItem(str(n), n)
        self.fft.setCurrentIndex(max(0, self.fft.findData(s.n_fft)))
        form.addRow("FFT size (samples)", self.fft)
        self.overlap = QComboBox()
        for value in OVERLAPS:
            self.overlap.addItem(f"{value * 100:g} %", value)
        self.overlap.setCurrentIndex(max(0, self.overlap.findData(s.overlap)))
        form.addRow("Overlap", self.overlap)
        self.window_kind = QComboBox()
        for name in WINDOWS:
            self.window_kind.addItem(name, name)
        self.window_kind.setCurrentIndex(self.window_kind.findData(s.window))
        form.addRow("Window", self.window_kind)
        self.scale = QComboBox()
        self.scale.addItem("linear", "linear")
        self.scale.addItem("log", "log")
        self.scale.setCurrentIndex(self.scale.findData(s.scale))
        form.addRow("Frequency axis", self.scale)
        self.colours = QComboBox()
        for name in COLORMAPS:
            self.colours.addItem(name, name)
        self.colours.setCurrentIndex(max(0, self.colours.findData(view.colormap_name)))
        form.addRow("Colours", self.colours)
        levels = QWidget()
        row = QHBoxLayout(levels)
        row.setContentsMargins(0, 0, 0, 0)
        self.floor = QDoubleSpinBox()
        self.ceiling = QDoubleSpinBox()
        for box, value in ((self.floor, view.levels[0]), (self.ceiling, view.levels[1])):
            box.setRange(-300.0, 300.0)
            box.setDecimals(1)
            box.setValue(value)
            row.addWidget(box)
        self.auto_levels = QCheckBox("automatic")
        self.auto_levels.setChecked(view.auto_levels)
        self.auto_levels.setToolTip("Set the range from the recording's first tile")
        row.addWidget(self.auto_levels)
        form.addRow("Range (floor, ceiling)", levels)
        self.pcen = QCheckBox("PCEN (per-channel energy normalisation)")
        self.pcen.setToolTip("Evens out steady background noise; good for faint calls")
        self.pcen.setChecked(s.pcen)
        form.addRow("", self.pcen)
        self.channel = QComboBox()
        self.channel.addItem("Mix of all channels", None)
        rec = window.document.recording
        for k in range(rec.channels if rec is not None else 1):
            self.channel.addItem(f"Channel {k + 1}", k)
        self.channel.setCurrentIndex(max(0, self.channel.findData(window.document.channel)))
        self.channel.setEnabled(self.channel.count() > 2)
        self.channel.setToolTip("Shown here, played, and detected on")
        form.addRow("Channel", self.channel)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Apply
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(lambda: window.guard(self._ok))
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(
            lambda: window.guard(self.apply))
        form.addRow(buttons)

    def _ok(self) -> None:
        self.apply()
        self.accept()

    def apply(self) -> None:
        window = self.window_
        view = window.native_spectrogram
        window.document.channel = self.channel.currentData()
        view.set_colormap(self.colours.currentData())
        settings = view.settings.with_(
            n_fft=int(self.fft.currentData()), overlap=float(self.overlap.currentData()),
            window=self.window_kind.currentData(), scale=self.scale.currentData(),
            pcen=self.pcen.isChecked(),
        )
        if self.auto_levels.isChecked():
            view.auto_levels = True
        if settings != view.settings:
            view.apply_settings(settings)
        elif self.auto_levels.isChecked():
            view.reset()
        if not self.auto_levels.isChecked():  # after new settings: the range is the user's
            view.set_levels(self.floor.value(), self.ceiling.value())
        window.save_spectrogram_settings()
        self.info.setText(view.describe())
