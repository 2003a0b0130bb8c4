"""The annotator's main window: views stacked on one time axis, docks, menus, keys.

The window is a shell: it assembles and routes. State lives in
:class:`~app.model.Document`, drawing in :mod:`app.views`, sound in
:class:`~app.player.Player`; the docks come from the one panel list
(:data:`app.panels.PANELS`), kept in ``window.panels`` (name -> widget) and
``window.docks`` (name -> dock); the open modal dialog of a kind is in
``window.dialogs`` (see :meth:`MainWindow.run_dialog`). Panels add menu actions with
:meth:`MainWindow.add_action`. Errors from any of them reach
:meth:`MainWindow.show_error`, which shows the message of a PannsError (never a
traceback); the store has already committed every finished edit.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QScrollBar,
    QSplitter,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from panns_core.errors import PannsError, ProjectFileError

from . import keys, settings
from .dialogs.io_dialogs import open_export, open_import
from .dialogs.label_picker import add_event_with_label, pick_label
from .dialogs.vocabulary import open_vocabulary
from .model import Document
from .opening import add_files_job, audio_files_in, sort_paths
from .panels import PANELS
from .player import PLAYING, Player
from .views.base import format_time
from .views.events_track import EventsTrackView
from .views.native_spectrogram import NativeSpectrogramView
from .views.probabilities import ProbabilityCurvesView, ProbabilityHeatmapView
from .views.spectrogram import SpectrogramView
from .views.tiled import COLORMAPS
from .views.waveform import WaveformView
from .views.wavegram import WavegramView

log = logging.getLogger(__name__)

AUDIO_FILTER = (
    "Audio files (*.wav *.flac *.ogg *.opus *.mp3 *.aif *.aiff *.w64 *.caf);;All files (*)"
)
PROJECT_FILTER = "PANNs projects (*.panns *.sqlite);;All files (*)"
SCROLL_STEPS = 10000
ULTRASONIC_RATE = 48000  # above this the native-rate spectrogram opens by itself


def spectrogram_settings_from(values):
    """Saved native-spectrogram settings (a dict), or the defaults when unusable."""
    from panns_core.display.spectrogram import SpectrogramSettings

    if isinstance(values, dict):
        try:
            return SpectrogramSettings(**values)
        except (TypeError, PannsError):
            log.info("saved spectrogram settings not used: %s", values)
    return SpectrogramSettings()


class MainWindow(QMainWindow):
    """See the module docstring. ``MainWindow(document=None, project=None)``."""

    closed = Signal()

    def __init__(self, document: Document | None = None, project: str | Path | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PANNs Annotator")
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        keys.install()  # keys typed into an editor never go to a window shortcut
        self.document = document or Document()
        self.player = Player(self.document, self)
        self.panels: dict[str, QWidget] = {}  # panel name -> its widget (app.panels)
        self.docks: dict[str, QDockWidget] = {}  # panel name -> its dock
        self.dialogs: dict[str, QDialog] = {}  # kind -> the modal dialog open now
        self.label_picker = pick_label  # (window, document, ids) -> label or None
        self.folder_worker = None  # adding a folder's files (open_folder)
        self.hash_worker = None  # hashing added files (hash_new_recordings)
        self.locate_prompt = ask_where_moved  # (window, recording) -> folder or None
        self.salvage_prompt = ask_salvage_path  # (window, damaged path) -> new path or None
        self.error_box: QMessageBox | None = None  # the error message shown last
        self.project_worker = None  # a backup or salvage running
        self.last_salvage = None  # the report of the last salvage
        self.last_error: str | None = None
        self.quiet_errors = False  # errors only in the status bar (tests, screenshots)
        self._layout_done = False
        self._build_views()
        self._build_docks()
        self._build_actions()
        self._build_panel_actions()
        self._build_status_bar()
        from .listening_bar import ListeningBar

        self.listening_bar = ListeningBar(self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.listening_bar)
        self.menus["Play"].addSeparator()
        self.add_action("Play", "S&lower (time expansion)",
                        lambda: self.listening_bar.step_speed(1), "[",
                        tip="Half the speed and an octave lower, down to 1/20x")
        self.add_action("Play", "&Faster", lambda: self.listening_bar.step_speed(-1), "]")
        self.add_action("Play", "&Heterodyne on/off", self.listening_bar.heterodyne.toggle,
                        "H")
        doc = self.document
        doc.events.recording.connect(self._on_recording)
        doc.viewport.events.view_range.connect(self._on_view_range)
        doc.viewport.events.cursor.connect(self._on_cursor)
        doc.history.events.history.connect(self._on_history)
        doc.events.status.connect(self._on_status)
        doc.events.project.connect(self._on_project)
        doc.selection_model.events.selection.connect(self._on_selection)
        doc.events.annotations.connect(self._update_counts)
        doc.events.recording.connect(self._update_counts)
        self.player.state_changed.connect(self._on_player_state)
        self.player.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        if project is not None or doc.store is None:
            # a damaged project shows its message (with Salvage) in a working window
            self.guard(self.open_project, project or settings.default_project_path())
        self._on_history()
        from .project_watch import ProjectWatch

        self.project_watch = ProjectWatch(self)

    # ------------------------------------------------------------------ layout
    def _build_views(self) -> None:
        doc = self.document
        self.waveform = WaveformView(doc)
        self.spectrogram = SpectrogramView(doc)
        self.native_spectrogram = NativeSpectrogramView(
            doc, settings=spectrogram_settings_from(settings.value("spectrogram")))
        self.wavegram = WavegramView(doc)
        self.heatmap = ProbabilityHeatmapView(doc)
        self.curves = ProbabilityCurvesView(doc)
        self.events_track = EventsTrackView(doc)
        self.views = [self.waveform, self.spectrogram, self.native_spectrogram, self.wavegram,
                      self.heatmap, self.curves, self.events_track]
        self.hidden_views = (self.native_spectrogram, self.wavegram)  # until asked for
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(3)
        for view in self.views:
            view.setMinimumHeight(50)
            view.failed.connect(self.show_error)
            self.splitter.addWidget(view)
        self.wavegram.hide()
        self.native_spectrogram.hide()
        self.splitter.setSizes([100, 190, 0, 140, 130, 110, 190])
        self.events_track.relabel_requested.connect(self.relabel_dialog)
        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal)
        self.scrollbar.setRange(0, 0)
        self.scrollbar.valueChanged.connect(self._on_scrollbar)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.scrollbar)
        self.empty_hint = QLabel(
            "Open a recording (File ▸ Open, Ctrl+O) or drop audio files here."
        )
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty_hint)
        self.setCentralWidget(central)

    def _build_docks(self) -> None:
        # side docks run the full height; bottom docks sit under the views only (set
        # before any dock exists: changing corners later leaves a stale tab bar behind)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        for panel in PANELS:
            widget = panel.create(self)
            dock = QDockWidget(panel.title, self)
            dock.setObjectName(f"dock_{panel.name}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetClosable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(panel.area, dock)
            self.panels[panel.name] = widget
            self.docks[panel.name] = dock
            if panel.tabify_with is not None:
                front = self.docks[panel.tabify_with]
                self.tabifyDockWidget(front, dock)
                front.raise_()
            if panel.hidden:
                dock.hide()
        self._size_side_docks()

    def _size_side_docks(self) -> None:
        for panel in PANELS:
            if panel.width is not None:
                self.resizeDocks([self.docks[panel.name]], [panel.width],
                                 Qt.Orientation.Horizontal)

    def _build_panel_actions(self) -> None:
        """After the window's own menus: each panel's View toggle and menu actions."""
        for panel in PANELS:
            if panel.view_toggle:
                self.view_menu.addAction(self.docks[panel.name].toggleViewAction())
            if panel.add_actions is not None:
                panel.add_actions(self, self.panels[panel.name])

    def add_action(self, menu: str | None, text: str, slot,
                   shortcut: str | QKeySequence | None = None, tip: str = "") -> QAction:
        """Add a menu action (plug-in point): ``menu`` is File, Edit, View, Play, Detect,
        Models or Help."""
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda *_: self.guard(slot))
        if menu is not None:  # None: a window shortcut without a menu entry
            self.menus[menu].addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        self.menus = {name: bar.addMenu(f"&{name}") for name in
                      ("File", "Edit", "View", "Play", "Detect", "Models", "Help")}
        self.view_menu = self.menus["View"]
        add = self.add_action
        # File
        add("File", "&Open recording…", self.open_dialog, QKeySequence.StandardKey.Open)
        add("File", "Open &folder…", self.open_folder_dialog, "Ctrl+Alt+O",
            tip="Add every audio file under a folder (and its sub-folders) to the project")
        add("File", "Open &project…", self.open_project_dialog, "Ctrl+Shift+O")
        add("File", "&New project…", self.new_project_dialog, "Ctrl+Shift+N")
        self.recent_menu = self.menus["File"].addMenu("Recent files")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        add("File", "Open the &demo recording", self.open_demo)
        self.menus["File"].addSeparator()
        add("File", "&Remove recording from project", self.remove_selected_recordings,
            tip="Take the selected recordings and their events out of the project "
                "(Ctrl+Z brings them back; the audio files stay)")
        add("File", "&Locate moved recordings…", self.locate_dialog,
            tip="Find recordings whose files were moved, by content, under a folder")
        add("File", "&Back up project…", self.backup_dialog,
            tip="Copy the project to another file, safely even while it is open "
                "(every edit up to now is in the copy)")
        self.menus["File"].addSeparator()
        add("File", "&Import annotations…", lambda: open_import(self), "Ctrl+Shift+I")
        add("File", "&Export annotations…", lambda: open_export(self), "Ctrl+Shift+E")
        self.menus["File"].addSeparator()
        add("File", "&Quit", self.close, QKeySequence.StandardKey.Quit)
        # Edit
        self.undo_action = add("Edit", "&Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = add("Edit", "&Redo", self.redo, "Ctrl+Shift+Z")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.menus["Edit"].addSeparator()
        add("Edit", "&Delete selected events", self.document.delete_events, "Delete")
        add(None, "Delete (Backspace)", self.document.delete_events, "Backspace")
        add("Edit", "&Accept selected", self.accept_selected, "A")
        add("Edit", "&Reject selected", self.reject_selected, "R")
        add("Edit", "Re&label selected…", lambda: self.relabel_dialog(None), "L")
        add("Edit", "Add event from time selection", self.add_from_time_selection, "Return")
        add("Edit", "Select &all events", self.select_all, QKeySequence.StandardKey.SelectAll)
        add("Edit", "&Next event", lambda: self.step_event(1), "N")
        add("Edit", "&Previous event", lambda: self.step_event(-1), "P")
        for digit in range(1, 10):
            add(None, f"Label {digit} from the vocabulary",
                lambda d=digit: self.apply_vocabulary_label(d), str(digit))
        add("Edit", "Add event with &label…", lambda: add_event_with_label(self),
            "Shift+Return", tip="Pick a label, then add an event over the time selection")
        add("Edit", "Label &vocabulary…", lambda: open_vocabulary(self),
            tip="Add, rename, remove, colour and key the project's labels (undoable)")
        # View
        add("View", "Zoom &in", lambda: self.document.zoom(0.5), "Ctrl+=")
        add("View", "Zoom &out", lambda: self.document.zoom(2.0), "Ctrl+-")
        add("View", "Zoom to &selection", self.zoom_to_selection, "Ctrl+E")
        add("View", "Show &whole recording", self.document.show_all, "Ctrl+0")
        add("View", "Scroll left", lambda: self.document.scroll(-0.25), "Left")
        add("View", "Scroll right", lambda: self.document.scroll(0.25), "Right")
        self.view_menu.addSeparator()
        self.view_actions: dict[str, QAction] = {}  # view title -> its show/hide action
        for view in self.views:
            action = QAction(view.title, self, checkable=True)
            action.setChecked(view.isVisibleTo(self) or view not in self.hidden_views)
            action.toggled.connect(view.setVisible)
            self.view_menu.addAction(action)
            self.view_actions[view.title] = action
        self.view_menu.addSeparator()
        cmap_menu = self.view_menu.addMenu("Spectrogram colours")
        for name in COLORMAPS:
            action = QAction(name, self, checkable=True)
            action.setChecked(name == self.spectrogram.colormap_name)
            action.triggered.connect(lambda _=False, n=name: self.set_colormap(n))
            cmap_menu.addAction(action)
        add("View", "Spectrogram dB range…", self.db_range_dialog)
        add("View", "Native-rate spectrogram &settings…", self.spectrogram_settings_dialog,
            tip="FFT size, overlap, window, frequency axis, colours, range, PCEN, channel")
        self.channel_menu = self.view_menu.addMenu("&Channel")
        self.channel_menu.aboutToShow.connect(self._fill_channel_menu)
        self.view_menu.addSeparator()
        # Play
        self.play_action = add("Play", "&Play / pause", self.player.toggle, "Space")
        add("Play", "&Stop", self.player.stop, "Escape")
        add("Play", "Play &selected event", self.play_selected_event, "Shift+Space")
        self.loop_action = QAction("&Loop", self, checkable=True)
        self.loop_action.setShortcut("Ctrl+L")
        self.loop_action.toggled.connect(self.player.set_loop)
        self.menus["Play"].addAction(self.loop_action)
        self.addAction(self.loop_action)
        # Detect
        detection = self.panels["detection"]
        add("Detect", "&Detect in this recording", detection.run, "Ctrl+D")
        add("Detect", "Detect in &all recordings", detection.run_all, "Ctrl+Shift+D")
        add("Detect", "&Cancel detection", detection.cancel)
        # Models
        add("Models", "&Model manager…", self.open_model_manager)
        # Help
        add("Help", "&Keys and mouse", self.show_help, "F1")
        add("Help", "&About", self.show_about)

    def _build_status_bar(self) -> None:
        self.counts_label = QLabel("")  # the current recording's events, every edit
        self.counts_label.setToolTip("Events of this recording; decided = the model's "
                                     "proposals you accepted, rejected or edited")
        self.statusBar().addPermanentWidget(self.counts_label)
        self.readout_label = QLabel("")  # time, frequency, level under the pointer
        self.readout_label.setToolTip("Time, frequency and level under the pointer on a "
                                      "spectrogram")
        self.statusBar().addPermanentWidget(self.readout_label)
        for view in self.views:
            if hasattr(view, "hovered"):
                view.hovered.connect(self.readout_label.setText)
        self.time_label = QLabel("0:00.00")
        self.time_label.setMinimumWidth(220)
        self.statusBar().addPermanentWidget(self.time_label)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._layout_done:
            self._layout_done = True
            # once now, once more after a window manager settled the final size
            QTimer.singleShot(0, self.apply_default_layout)
            QTimer.singleShot(300, self.apply_default_layout)

    def apply_default_layout(self) -> None:
        """Give the views most of the height: bottom docks get about a quarter."""
        self._hide_stale_tab_bars()
        bottom = [dock for dock in self.findChildren(QDockWidget)
                  if self.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea
                  and not dock.isFloating()]
        if bottom:
            first = bottom[0]
            for dock in bottom[1:]:
                if dock not in self.tabifiedDockWidgets(first):
                    self.tabifyDockWidget(first, dock)
            first.raise_()
            self.resizeDocks([first], [max(150, self.height() // 4)], Qt.Orientation.Vertical)
        self._size_side_docks()
        total = max(300, self.splitter.height())
        shares = [0.13, 0.25, 0.17, 0.17, 0.28] if not self.wavegram.isVisible() else \
            [0.12, 0.2, 0.14, 0.12, 0.14, 0.28]
        native = self.native_spectrogram
        sizes, i = [], 0
        for view in self.views:
            if view is native:
                sizes.append(0)
            elif view not in self.hidden_views or view.isVisible():
                sizes.append(int(total * shares[min(i, len(shares) - 1)]))
                i += 1
            else:
                sizes.append(0)
        if native.isVisible():  # a quarter of the height, taken from the others
            sizes = [int(size * 0.75) for size in sizes]
            sizes[self.views.index(native)] = int(total * 0.25)
        self._make_room_for_lanes(sizes, total)
        self.splitter.setSizes(sizes)

    def _make_room_for_lanes(self, sizes: list[int], total: int) -> None:
        """The events track gets the height its lanes need (up to 45 %), taken from the
        other views in proportion."""
        from .views.events_track import MIN_LANE_PIXELS

        at = self.views.index(self.events_track)
        if not sizes[at]:
            return
        wanted = min(int(total * 0.45), self.events_track.n_lanes * MIN_LANE_PIXELS + 36)
        extra = wanted - sizes[at]
        others = sum(size for i, size in enumerate(sizes) if i != at)
        if extra <= 0 or others <= 0:
            return
        for i, size in enumerate(sizes):
            if i != at:
                sizes[i] = max(min(size, 70), size - int(extra * size / others))
        sizes[at] = wanted

    def _hide_stale_tab_bars(self) -> None:
        """Qt can leave an old copy of a dock tab bar on screen when a tabified dock is
        hidden before the window is first shown; keep only bars that touch their docks."""
        docks = {d.windowTitle(): d for d in self.findChildren(QDockWidget)}
        for bar in self.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly):
            titles = [bar.tabText(i) for i in range(bar.count())]
            live = [docks[t] for t in titles if t in docks and docks[t].isVisible()]
            touching = any(
                abs(bar.geometry().top() - d.geometry().bottom() - 1) <= 4
                or abs(d.geometry().top() - bar.geometry().bottom() - 1) <= 4
                for d in live
            )
            if titles and not touching:
                bar.hide()

    # ------------------------------------------------------------ open / save
    def open_project(self, path: str | Path) -> None:
        """Open (or create) a project and show it as it was left (see
        :meth:`restore_project_state`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.save_project_state()
        self.document.open_project(path)
        settings.set_value("last_project", str(path))
        self.restore_project_state()

    def project_state(self) -> dict:
        """What reopening the project brings back: current recording, view range and
        cursor, post-processing params, chosen model, shown views, chosen curves."""
        from dataclasses import asdict

        doc = self.document
        rec = doc.recording
        params = asdict(doc.params)
        params = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple)
                      else v) for k, v in params.items()}
        return {
            "recording": rec.id if rec is not None else None,
            "view_range": list(doc.view_range) if rec is not None else None,
            "cursor": doc.cursor,
            "params": params,
            "params_by_hand": doc.detection.params_by_hand,
            "model": doc.model,
            "views": {title: action.isChecked() for title, action in self.view_actions.items()},
            "curves": self.curves.chosen,
        }

    def save_project_state(self) -> None:
        doc = self.document
        if doc.store is None or doc.project_path is None:
            return
        detection = self.panels.get("detection")
        if detection is not None:
            detection.flush()  # the events shown are the ones the params give
        try:
            settings.set_project_state(doc.project_path, self.project_state())
        except OSError as error:  # settings not writable: the project itself is saved
            log.warning("window state not saved: %s", error)

    def restore_project_state(self) -> None:
        """Show the open project as :meth:`save_project_state` left it (parts that no
        longer apply, e.g. a removed recording, are skipped)."""
        doc = self.document
        if doc.project_path is None:
            return
        state = settings.project_state(doc.project_path)
        # the model's calibrated params replace the params unless set by hand here
        doc.detection.params_by_hand = bool((state or {}).get("params_by_hand", False))
        if not state:
            return
        for title, shown in (state.get("views") or {}).items():
            if title in self.view_actions and isinstance(shown, bool):
                self.view_actions[title].setChecked(shown)
        params = state.get("params")
        if isinstance(params, dict):
            from panns_core.detection.postprocess import PostprocessParams

            try:
                doc.params = PostprocessParams(**params)
            except (TypeError, ValueError) as error:
                log.info("saved params not used: %s", error)
        if state.get("model") is None or isinstance(state.get("model"), str):
            doc.model = state.get("model")
        if isinstance(state.get("curves"), list):
            self.curves.chosen = [str(c) for c in state["curves"]]
        rec_id = state.get("recording")
        ids = {r.id for r in doc.recordings}
        if rec_id in ids and next(r for r in doc.recordings if r.id == rec_id).path.is_file():
            self.guard(doc.set_recording, rec_id)
            span = state.get("view_range")
            if doc.recording is not None and isinstance(span, list) and len(span) == 2:
                doc.view_range = (float(span[0]), float(span[1]))
                doc.cursor = float(state.get("cursor") or 0.0)

    def open_paths(self, paths) -> None:
        """What the command line, a drop or a file manager gives: a project file is
        opened as the project (the last one given), folders and audio files are added
        to it."""
        found = sort_paths(paths)
        if found.projects:
            self.open_project(found.projects[-1])
        if found.audio:
            self.open_files(found.audio)
        for folder in found.folders:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path):
        """Add the audio files under ``folder`` (recursive) on a worker, with a progress
        dialog for big folders; the first new one becomes current when none is."""
        from .workers import Worker, while_alive

        folder = Path(folder)
        files = audio_files_in(folder)
        if not files:
            raise PannsError(f"No audio files in {folder} or its sub-folders.")
        store = self.document._require_store()
        progress = QProgressDialog(f"Adding {len(files)} recordings from {folder.name}…",
                                   "Stop", 0, 1000, self)
        progress.setWindowTitle("Open folder")
        progress.setMinimumDuration(500)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        worker = Worker(add_files_job, store, files)
        worker.progress.connect(while_alive(progress, lambda dialog, f, text: (
            dialog.setValue(int(f * 1000)), dialog.setLabelText(text))))
        progress.canceled.connect(worker.cancel)
        worker.returned.connect(while_alive(self, lambda w, added: w._folder_added(folder, added)))
        worker.aborted.connect(while_alive(self, lambda w: w._folder_added(folder, None)))
        worker.errored.connect(self.show_error)
        worker.finished.connect(progress.close)
        worker.finished.connect(progress.deleteLater)
        worker.finished.connect(lambda: setattr(self, "folder_worker", None))
        self.folder_worker = worker
        settings.set_value("last_folder", str(folder))
        return worker.start()

    def _folder_added(self, folder: Path, added) -> None:
        doc = self.document
        if doc.store is None:
            return
        doc.reload_recordings()
        if added is None:
            self.statusBar().showMessage(f"Stopped adding files from {folder.name}.", 8000)
            return
        if added.ids and doc.recording is None:
            self.guard(doc.set_recording, added.ids[0])
        self.hash_new_recordings()
        text = f"{len(added.ids)} recording(s) from {folder.name}"
        if added.skipped:
            text += f"; {len(added.skipped)} file(s) not readable as audio were left out"
            log.info("skipped: %s", added.skipped)
        self.statusBar().showMessage(text, 10000)

    def open_folder_dialog(self) -> None:
        start = settings.value("last_folder", "") or ""
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of recordings", start)
        if folder:
            self.open_folder(folder)

    def remove_selected_recordings(self) -> None:
        self.document.remove_recordings(self.panels["recordings"].selected_ids())

    def locate_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Where are the moved recordings? (searched by content)",
            settings.value("last_folder", "") or "")
        if folder:
            self.locate_recordings(folder)

    def show_recording(self, rec_id: int) -> None:
        """Make a recording current; when its file is gone, ask where it went (by
        ``self.locate_prompt``) instead of drawing a view of nothing."""
        doc = self.document
        rec = next((r for r in doc.recordings if r.id == rec_id), None)
        if rec is None or rec.path.is_file():
            doc.set_recording(rec_id)
            return
        folder = self.locate_prompt(self, rec)
        self.panels["recordings"].follow_current()  # the list shows what is current
        if not folder:
            self.statusBar().showMessage(f"{rec.name} is missing: File ▸ Locate moved "
                                         "recordings… finds it.", 10000)
            return
        found = self.locate_recordings(folder)
        if rec_id not in found:
            raise PannsError(f"{rec.name} (the same content) is not under {folder}. "
                             "Choose the folder it was moved to.")
        doc.set_recording(rec_id)

    def locate_recordings(self, folder: str | Path) -> dict[int, Path]:
        """Find the project's missing files under ``folder`` (by content hash, or by
        name and size when no hash was taken) and point the project at them."""
        found = self.document.relocate(folder)
        missing = len(self.document.store.missing_recordings())
        text = f"Found {len(found)} moved recording(s)"
        text += f"; {missing} still missing." if missing else "."
        self.statusBar().showMessage(text, 10000)
        return found

    def open_files(self, paths) -> None:
        """Open one or more audio files (the first becomes current)."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        ids = self.document.add_recordings(paths)
        self.document.set_recording(ids[0])
        for path in paths:
            settings.add_recent_file(path)
        self.hash_new_recordings()

    def hash_new_recordings(self) -> None:
        """Hash the files added without a content hash, on a worker (relocate finds a
        moved and renamed file by it)."""
        from .opening import hash_job
        from .workers import Worker

        store = self.document.store
        if store is None or self.hash_worker is not None:
            return
        worker = Worker(hash_job, store)
        worker.finished.connect(lambda: setattr(self, "hash_worker", None))
        self.hash_worker = worker
        worker.start()

    def open_dialog(self) -> None:
        start = str(Path(settings.recent_files()[0]).parent) if settings.recent_files() else ""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open recordings", start, AUDIO_FILTER)
        if paths:
            self.open_files(paths)

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", "", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def new_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project", "project.panns",
                                              PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_demo(self) -> None:
        from panns_core.data import resource_path

        self.open_files([resource_path("demo.flac")])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.guard(self.open_files, [p]))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.guard(self.open_paths, paths)

    # ------------------------------------------------------------------ editing
    def undo(self) -> None:
        """Ctrl+Z: a re-derivation the controls still hold back (they wait for more
        changes) is applied first, so the undo takes back what the user did last."""
        self.panels["detection"].flush()
        self.document.undo()

    def redo(self) -> None:
        self.panels["detection"].flush()
        self.document.redo()

    def accept_selected(self) -> None:
        self.document.accept()
        self.step_event(1, only_if_single=True)

    def reject_selected(self) -> None:
        self.document.reject()
        self.step_event(1, only_if_single=True)

    def step_event(self, step: int, only_if_single: bool = False) -> None:
        doc = self.document
        if only_if_single and len(doc.selection) != 1:
            return
        event_id = doc.neighbour_event(step)
        if event_id is None:
            return
        doc.select(event_id)
        row = doc.event(event_id)
        start, stop = doc.view_range
        if row["onset"] < start or row["offset"] > stop:
            width = stop - start
            centre = (row["onset"] + row["offset"]) / 2
            doc.view_range = (centre - width / 2, centre + width / 2)
        doc.cursor = float(row["onset"])

    def select_all(self) -> None:
        self.document.selection = self.document.annotations["id"].astype(int).tolist()

    def add_from_time_selection(self) -> None:
        span = self.document.time_selection
        if span is not None:
            self.document.add_event(*span, band=self.document.viewport.band_selection)
            self.document.time_selection = None

    def apply_vocabulary_label(self, digit: int) -> None:
        """Keys 1-9: the vocabulary entry with that hotkey (else the n-th entry)."""
        vocab = self.document.vocabulary()
        entry = next((e for e in vocab if e.hotkey == str(digit)), None)
        if entry is None and len(vocab) >= digit:
            entry = vocab[digit - 1]
        if entry is None:
            self.statusBar().showMessage(
                f"No label on key {digit}: add labels to the project vocabulary first.", 6000)
            return
        if self.document.selection:
            self.document.relabel(None, entry.name)
        else:
            self.document.default_label = entry.name

    def relabel_dialog(self, ids=None) -> None:
        """Ask for a label for ``ids`` (default: the selection) with ``self.label_picker``."""
        doc = self.document
        ids = list(ids) if ids is not None else sorted(doc.selection)
        if not ids:
            return
        label = self.label_picker(self, doc, ids)
        if label:
            doc.relabel(ids, label)

    # -------------------------------------------------------------------- view
    def set_colormap(self, name: str) -> None:
        self.spectrogram.set_colormap(name)
        self.wavegram.set_colormap(name)
        self.native_spectrogram.set_colormap(name)
        settings.set_value("colormap", name)

    def spectrogram_settings_dialog(self) -> None:
        from .dialogs.spectrogram_settings import SpectrogramSettingsDialog

        if not self.native_spectrogram.isVisible():
            self.view_actions[self.native_spectrogram.title].setChecked(True)
        self.run_dialog("spectrogram", SpectrogramSettingsDialog(self))

    def save_spectrogram_settings(self) -> None:
        from dataclasses import asdict

        values = asdict(self.native_spectrogram.settings)
        values.pop("channel")  # the channel belongs to the recording, not the program
        settings.set_value("spectrogram", values)

    def _fill_channel_menu(self) -> None:
        menu = self.channel_menu
        menu.clear()
        doc = self.document
        channels = doc.recording.channels if doc.recording is not None else 1
        choices = [("Mix of all channels", None)] + [
            (f"Channel {k + 1}", k) for k in range(channels)]
        for text, channel in choices:
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(doc.channel == channel)
            action.setEnabled(channels > 1)
            action.triggered.connect(
                lambda _=False, c=channel: self.guard(setattr, doc, "channel", c))

    def db_range_dialog(self) -> None:
        low, high = self.spectrogram.levels
        text, ok = QInputDialog.getText(self, "Spectrogram range",
                                        "Floor and ceiling in dB (e.g. -90 10):",
                                        text=f"{low:g} {high:g}")
        if ok:
            try:
                low, high = (float(v) for v in text.replace(",", " ").split())
            except ValueError:
                raise PannsError(
                    "Give two numbers, the floor and the ceiling, e.g. -90 10."
                ) from None
            self.spectrogram.set_levels(low, high)

    def zoom_to_selection(self) -> None:
        doc = self.document
        if doc.time_selection:
            doc.view_range = doc.time_selection
        elif doc.selection:
            rows = doc.annotations[doc.annotations["id"].isin(doc.selection)]
            pad = 0.5
            doc.view_range = (rows["onset"].min() - pad, rows["offset"].max() + pad)

    def play_selected_event(self) -> None:
        if self.document.selection:
            self.player.play_event(min(self.document.selection))

    # ----------------------------------------------------------- doc listeners
    def _on_status(self, event) -> None:
        self.statusBar().showMessage(event.value, 6000)

    def _on_project(self, event) -> None:
        path = event.value
        self.setWindowTitle(f"PANNs Annotator — {Path(path).name if path else 'no project'}")

    def _on_recording(self, event) -> None:
        rec = event.value
        self.empty_hint.setVisible(rec is None)
        self.splitter.setVisible(rec is not None)
        if rec is not None:
            self.setWindowTitle(f"{rec.name} — PANNs Annotator")
            native = self.native_spectrogram
            if rec.sample_rate > ULTRASONIC_RATE and not native.isVisibleTo(self):
                # the log-mel view stops at 14 kHz: show the recording as it is
                self.view_actions[native.title].setChecked(True)
                self.apply_default_layout()
                self.statusBar().showMessage(
                    f"{rec.name} is sampled at {rec.sample_rate / 1000:g} kHz: the spectrogram "
                    f"shows it up to {rec.sample_rate / 2000:g} kHz.", 10000)
        self._update_scrollbar()

    def _on_view_range(self, event) -> None:
        self._update_scrollbar()
        self._update_time_label()

    def _update_scrollbar(self) -> None:
        doc = self.document
        duration = doc.duration
        start, stop = doc.view_range
        self.scrollbar.blockSignals(True)
        if duration <= 0 or stop - start >= duration - 1e-9:
            self.scrollbar.setRange(0, 0)
        else:
            page = int(SCROLL_STEPS * (stop - start) / duration)
            self.scrollbar.setRange(0, SCROLL_STEPS - page)
            self.scrollbar.setPageStep(max(1, page))
            self.scrollbar.setSingleStep(max(1, page // 10))
            self.scrollbar.setValue(int(SCROLL_STEPS * start / duration))
        self.scrollbar.blockSignals(False)

    def _on_scrollbar(self, value: int) -> None:
        doc = self.document
        start, stop = doc.view_range
        new_start = value / SCROLL_STEPS * doc.duration
        doc.view_range = (new_start, new_start + stop - start)

    def _on_cursor(self, event) -> None:
        self._update_time_label()

    def _update_time_label(self) -> None:
        doc = self.document
        start, stop = doc.view_range
        self.time_label.setText(
            f"▶ {format_time(doc.cursor, 1)}   view {format_time(start, stop - start)}"
            f"–{format_time(stop, stop - start)}"
        )

    def _on_history(self, event=None) -> None:
        history = self.document.history
        self.undo_action.setEnabled(history.can_undo)
        self.redo_action.setEnabled(history.can_redo)
        self.undo_action.setText(f"&Undo {history.undo_text}".strip())
        self.redo_action.setText(f"&Redo {history.redo_text}".strip())

    def _update_counts(self, _event=None) -> None:
        from panns_core import events as ev

        doc = self.document
        frame = doc.annotations
        if doc.recording is None:
            self.counts_label.setText("")
            return
        model = frame[frame["source"] != ev.HUMAN]
        proposed = int((frame["status"] == ev.PROPOSED).sum())
        decided = int((model["status"] != ev.PROPOSED).sum())
        self.counts_label.setText(f"{len(frame)} events · {proposed} proposed · "
                                  f"{decided} of {len(model)} decided")

    def _on_selection(self, event) -> None:
        n = len(event.value)
        if n:
            self.statusBar().showMessage(
                f"{n} event(s) selected — A accept, R reject, L relabel, Del delete", 4000)

    def _on_player_state(self, state: str) -> None:
        self.play_action.setText("&Pause" if state == PLAYING else "&Play / pause")

    # ------------------------------------------------------- backup / salvage
    def backup_dialog(self) -> None:
        import time

        doc = self.document
        if doc.project_path is None:
            raise PannsError("No project file is open. Open a project first.")
        stamp = time.strftime("%Y-%m-%d-%H%M")
        start = doc.project_path.with_name(f"{doc.project_path.stem}-backup-{stamp}.panns")
        path, _ = QFileDialog.getSaveFileName(self, "Back up project", str(start),
                                              PROJECT_FILTER)
        if path:
            self.backup_project(path)

    def backup_project(self, dest: str | Path):
        """Copy the open project to ``dest`` on a worker (SQLite's backup API; the copy
        holds every commit and is checked before it is moved into place)."""
        store = self.document._require_store()
        return self._project_job(
            "Back up project", f"Copying the project to {Path(dest).name}…",
            lambda cancel=None: store.backup(dest, overwrite=True, cancel=cancel),
            lambda path: self.statusBar().showMessage(f"Backed up the project to {path}.",
                                                      10000))

    def salvage_dialog(self, damaged: str | Path) -> None:
        """Ask where the salvaged copy goes, salvage, and open it."""
        dest = self.salvage_prompt(self, Path(damaged))
        if dest:
            self.salvage_project(damaged, dest)

    def salvage_project(self, damaged: str | Path, dest: str | Path):
        """Copy what is readable of a damaged project into ``dest`` (a worker), then
        open ``dest``; the damaged file is only read."""
        from panns_core.annotations.store.salvage import salvage

        def done(report) -> None:
            self.open_project(report.dest)
            self.statusBar().showMessage(report.describe(), 20000)
            self.last_salvage = report

        return self._project_job(
            "Salvage project", f"Salvaging {Path(damaged).name}…",
            lambda cancel=None: salvage(damaged, dest, cancel=cancel),
            lambda report: self.guard(done, report))

    def _project_job(self, title: str, text: str, func, on_done):
        from .workers import Worker, while_alive

        if self.project_worker is not None:
            raise PannsError("A backup or salvage is running; wait until it has finished.")
        progress = QProgressDialog(text, "Stop", 0, 0, self)
        progress.setWindowTitle(title)
        progress.setMinimumDuration(500)
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        worker = Worker(func)
        progress.canceled.connect(worker.cancel)
        worker.returned.connect(while_alive(self, lambda _window, result: on_done(result)))
        worker.errored.connect(self.show_error)
        worker.finished.connect(progress.close)
        worker.finished.connect(progress.deleteLater)
        worker.finished.connect(lambda: setattr(self, "project_worker", None))
        self.project_worker = worker
        return worker.start()

    # ------------------------------------------------------------------ dialogs
    def open_model_manager(self) -> None:
        from .dialogs.model_manager import ModelManagerDialog

        dialog = ModelManagerDialog(self)
        dialog.models_changed.connect(self.panels["detection"].refresh_models)
        dialog.models_changed.connect(self.wavegram.refresh_model)
        dialog.models_changed.connect(self.heatmap.refresh_hint)
        dialog.exec()

    def show_help(self) -> None:
        QMessageBox.information(self, "Keys and mouse", HELP_TEXT)

    def show_about(self) -> None:
        from panns_core import __version__

        QMessageBox.about(
            self, "About PANNs Annotator",
            f"PANNs Annotator {__version__}\n\nSee, hear, detect and correct sound events "
            "with PANNs CNN14 models (Kong et al., 2020).",
        )

    def run_dialog(self, kind: str, dialog: QDialog) -> int:
        """``dialog.exec()``, with the dialog in ``self.dialogs[kind]`` while it is open
        (tests drive it there); it is deleted afterwards."""
        self.dialogs[kind] = dialog
        try:
            return dialog.exec()
        finally:
            self.dialogs.pop(kind, None)
            dialog.deleteLater()

    # ------------------------------------------------------------------- errors
    def guard(self, func, *args):
        """Run ``func(*args)``; an error goes to :meth:`show_error` (returns None)."""
        try:
            return func(*args)
        except Exception as error:
            self.show_error(error)
            return None

    def show_error(self, error: BaseException) -> None:
        """A message box with what went wrong and what to do; never a traceback."""
        if isinstance(error, PannsError):
            text = str(error)
        else:
            log.error("unexpected error\n%s", "".join(traceback.format_exception(error)))
            text = (f"Something unexpected went wrong: {type(error).__name__}: {error}\n\n"
                    "Your edits are saved. Please report this with the log.")
        self.last_error = text
        self.statusBar().showMessage(text.splitlines()[0], 10000)
        if self.quiet_errors:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "PANNs Annotator", text,
                          QMessageBox.StandardButton.Ok, self)
        box.setModal(True)
        box.salvage_button = None
        if isinstance(error, ProjectFileError) and error.salvageable and error.path:
            button = box.addButton("Salvage into a new project…",
                                   QMessageBox.ButtonRole.AcceptRole)
            button.clicked.connect(lambda _=False, p=error.path: self.guard(
                self.salvage_dialog, p))
            box.salvage_button = button
        self.error_box = box
        QTimer.singleShot(0, box.open)

    # -------------------------------------------------------------------- close
    def shutdown(self) -> None:
        """Stop playback and every worker of the window (idempotent)."""
        self.project_watch.stop()
        self.player.shutdown()
        self.panels["detection"].shutdown()
        for view in self.views:
            view.shutdown()
        from .workers import cancel_all

        cancel_all(wait=10.0)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_project_state()
        self.shutdown()
        settings.set_value("geometry", self.saveGeometry())
        self.document.close_project()
        self.closed.emit()
        super().closeEvent(event)


def ask_where_moved(window: MainWindow, rec) -> str | None:
    """Say the recording's file is gone; the folder to search, or None."""
    if window.quiet_errors:
        window.last_error = f"{rec.path} is missing."
        return None
    answer = QMessageBox.question(
        window, "Recording not found",
        f"{rec.name} is not at\n{rec.path}\nany more. Look for it (by its content, under "
        "any name) in a folder? Other moved recordings of the project are found too.",
        QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel)
    if answer != QMessageBox.StandardButton.Open:
        return None
    return QFileDialog.getExistingDirectory(window, f"Where is {rec.name}?",
                                            str(rec.path.parent.parent)) or None


def ask_salvage_path(window: MainWindow, damaged: Path) -> str | None:
    """Where the salvaged copy of ``damaged`` goes (a new file), or None."""
    start = damaged.with_name(f"{damaged.stem}-salvaged.panns")
    path, _ = QFileDialog.getSaveFileName(window, "Salvage into a new project", str(start),
                                          PROJECT_FILTER)
    return path or None


HELP_TEXT = """Mouse
  Wheel: zoom time around the pointer.  Shift+wheel: scroll.
  Right- or middle-drag: pan.  Left click: move the cursor.
  Left drag (waveform): select a time span (Enter adds an event).
  Spectrograms: drag on empty space draws a box (time span and frequency band;
  Enter adds it as an event); drag a box to move it, drag an edge to resize it.
  Listening toolbar: speed 2x to 1/20x (time expansion lowers the pitch with the
  speed; [ slower, ] faster), heterodyne (carrier in kHz; H on/off), play only the
  box's band.
  Events track: click selects (Shift adds, Ctrl toggles), drag moves,
  drag an edge resizes, drag on empty space adds, double-click relabels.

Keys
  Space play/pause · Shift+Space play the selected event · Esc stop · Ctrl+L loop
  A accept · R reject · L relabel · Del delete · N / P next / previous event
  1-9 label from the vocabulary · Ctrl+Z undo · Ctrl+Shift+Z redo
  Ctrl+D detect · Ctrl+= / Ctrl+- zoom · Ctrl+0 whole recording · ←/→ scroll
"""
