"""`synctalk-parity demo`: cached synthetic models, the demo data, one reference run, FPS printed."""
from __future__ import annotations

from pathlib import Path

from fixtures.cache import cache_dir, cached, cached_models
from fixtures.locate import shared_data_dir
from harness.bench import bare_generator_fps
from reference.data import open_source
from reference.infer import infer
from reference.models import ModelFiles, Models

DEMO_AUDIO = "talk_hb.wav"


def demo_data(frames: int) -> tuple[Path, Path, str]:
    """(pack, audio, description): the Sanders pack and talk_hb.wav, or a synthetic pack and its WAV."""
    data = shared_data_dir()
    if data is not None:
        return data / "sanders_pack", data / "audio" / DEMO_AUDIO, f"Sanders pack ({data})"
    from fixtures.pack import build_pack
    seconds = frames / 25 + 1.0
    folder = cache_dir() / f"synthetic-pack-{int(seconds)}s"
    pack = cached(folder, lambda tmp: build_pack(tmp, frames=60, audio_seconds=seconds))
    return pack, pack / "audio.wav", f"synthetic pack ({pack}; no real data found)"


def run_demo(frames: int = 250, threads: int = 0, output: Path = Path("parity-out/demo"), size: str = "full") -> int:
    """Run the demo and print where the frames went and how fast it was."""
    print(f"models: synthetic {size} (cached in {cache_dir()}) ...", flush=True)
    models = Models(ModelFiles.from_dir(cached_models(size)), threads=threads)
    pack, audio, label = demo_data(frames)
    print(f"data: {label}\naudio: {audio}", flush=True)
    result = infer(open_source(pack), audio, models, Path(output) / "frames", frames)
    bare = bare_generator_fps(models, frames=min(30, frames))
    where = "all cores" if threads == 0 else f"{threads} threads"
    print(f"\n{result.frames} frames -> {result.output.resolve()}/frame_00001.png ...")
    print(f"reference: {result.fps:.2f} FPS end to end ({result.seconds:.1f} s, audio features "
          f"{result.audio_seconds:.2f} s)")
    print(f"bare generator: {bare:.2f} FPS ({where}); reference / bare = {result.fps / bare:.2f}")
    return 0
