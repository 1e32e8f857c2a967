"""Write the demo pipeline's source to a scratch folder and package it."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

__all__ = ["build_package"]

PIPELINE_SOURCE = textwrap.dedent(
    '''
    """A toy text scorer: the code a real model would ship with."""
    import json
    import math

    from . import features


    class Pipeline:
        def __init__(self, config_json):
            self.config = json.loads(config_json)

        def __call__(self, text):
            counts = features.word_lengths(text)
            raw = sum(self.config["weights"].get(str(n), 0.0) for n in counts)
            return 1 / (1 + math.exp(-raw))
    '''
)
FEATURES_SOURCE = textwrap.dedent(
    """
    def word_lengths(text):
        return [len(word) for word in text.split()]
    """
)
CONFIG = {"weights": {"1": 0.5, "4": 0.25, "5": -0.5, "7": 1.0}}


def build_package(workdir: Path) -> Path:
    """Create the pipeline package in *workdir*/demo.pt and return its path."""
    from hermetic import PackageExporter

    source_root = workdir / "src"
    package = source_root / "hermetic_demo_pipeline"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(PIPELINE_SOURCE)
    (package / "features.py").write_text(FEATURES_SOURCE)
    sys.path.insert(0, str(source_root))
    try:
        importlib.invalidate_caches()
        model = importlib.import_module("hermetic_demo_pipeline.model")
        config_json = json.dumps(CONFIG)
        archive = workdir / "demo.pt"
        with PackageExporter(archive) as exporter:
            exporter.intern("hermetic_demo_pipeline.**")
            exporter.save_text("pipeline", "config.json", config_json)
            exporter.save_pickle(
                "pipeline", "pipeline.pkl", model.Pipeline(config_json)
            )
        return archive
    finally:
        sys.path.remove(str(source_root))
        for name in [n for n in sys.modules if n.startswith("hermetic_demo_pipeline")]:
            del sys.modules[name]
