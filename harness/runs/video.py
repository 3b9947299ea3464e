"""Side-by-side videos (reference | candidate | amplified difference) with the audio muxed in.

Written while a parity run streams the frames, so nothing is held in memory; ffmpeg comes from
imageio-ffmpeg's bundled binary and is run with an argv list. A run that explains its failure ends
the video with a card of its findings (`card`), held for `CARD_SECONDS` over silence.
"""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import cv2
import numpy as np

from reference.audio import VIDEO_FPS

SCALE = 0.5  # each panel at half size: 3 x 640 x 360 for 720p frames
AMPLIFY = 8
CARD_SECONDS = 4
CARD_FONT = 0.45  # cv2 Hershey scale: about 9 px per character at 1920 px wide


def diff_heatmap(ref: np.ndarray, cand: np.ndarray, amplify: int = AMPLIFY) -> np.ndarray:
    """|ref - cand| (max over channels) times `amplify`, as a BGR heatmap."""
    diff = cv2.absdiff(ref, cand).max(axis=2)
    return cv2.applyColorMap(np.clip(diff.astype(np.uint16) * amplify, 0, 255).astype(np.uint8), cv2.COLORMAP_INFERNO)


class SideBySideVideo:
    """Frames appended one by one; `close` finishes the MP4 and muxes `audio` in.

    A failure (no ffmpeg, a writer that dies, a mux that fails) never raises: it is kept in `error`,
    the files written so far are removed (no half-written ``*.noaudio.mp4`` stays) and later frames
    are ignored, so that a video never ends a parity run.
    """

    def __init__(self, path: Path, audio: Path) -> None:
        self.path, self.audio = Path(path), Path(audio)
        self.silent = self.path.with_name(self.path.stem + ".noaudio.mp4")
        self.error: str | None = None
        self._writer = None
        self.frames = 0  # frames of the run added (the card not counted)
        try:
            import imageio_ffmpeg
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
            self._imageio = imageio_ffmpeg
        except Exception as exc:  # noqa: BLE001 - recorded on the backend, never raised
            self._fail(exc)

    def add(self, ref: np.ndarray, cand: np.ndarray) -> None:
        if self.error is not None:
            return
        try:
            panel = np.concatenate([ref, cand, diff_heatmap(ref, cand)], axis=1)
            panel = cv2.resize(panel, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
            if self._writer is None:
                h, w = panel.shape[:2]
                self._size = (w - w % 2, h - h % 2)
                self._writer = self._imageio.write_frames(str(self.silent), self._size, fps=VIDEO_FPS,
                                                          codec="libx264", pix_fmt_in="bgr24", quality=7,
                                                          macro_block_size=2, ffmpeg_log_level="error")
                self._writer.send(None)
            self._writer.send(np.ascontiguousarray(panel[:self._size[1], :self._size[0]]))
            self.frames += 1
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def card(self, title: str, lines: list[str]) -> None:
        """Hold a card of `title` and `lines` (wrapped to the video's width, as many as fit) for
        `CARD_SECONDS` after the run's frames; nothing before the first frame or after a failure."""
        if self._writer is None or self.error is not None:
            return
        try:
            w, h = self._size
            image = np.zeros((h, w, 3), np.uint8)
            width = max(20, int(w / (20 * CARD_FONT)))
            rows = [(title, (255, 255, 255))] + [(part, (200, 220, 255)) for line in lines
                                                 for part in textwrap.wrap(line, width, subsequent_indent="    ")]
            step = int(40 * CARD_FONT) + 6
            for k, (text, colour) in enumerate(rows[:max(1, (h - 2 * step) // step)]):
                cv2.putText(image, text, (12, step * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, CARD_FONT, colour, 1, cv2.LINE_AA)
            for _ in range(CARD_SECONDS * VIDEO_FPS):
                self._writer.send(image)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        from harness.system.crashlog import describe
        detail = describe(exc)
        stderr = getattr(exc, "stderr", None)
        if stderr:
            last = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else str(stderr)
            detail += f" ({last.strip().splitlines()[-1]})" if last.strip() else ""
        self.error = detail
        self.discard()

    def discard(self) -> None:
        """Stop writing and remove what was written (the run failed, or the video did)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - a dead writer: its file goes anyway
                pass
        self.silent.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def close(self) -> Path | None:
        """Finish the video and mux the audio (trimmed to the run's frames, silence under the card); None
        when no frame was added or the video failed (see `error`)."""
        if self._writer is None or self.error is not None:
            self.discard()
            return None
        cmd = [self.ffmpeg, "-y", "-loglevel", "error", "-i", str(self.silent), "-i", str(self.audio),
               "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
               "-af", f"atrim=end={self.frames / VIDEO_FPS:.3f},apad", "-shortest", str(self.path)]
        try:
            self._writer.close()
            self._writer = None
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
            return None
        self.silent.unlink(missing_ok=True)
        return self.path
