"""Write the demo's sources to a scratch folder and package them.

The text-scoring pipeline needs nothing but the standard library. When torch is
importable, a small ``nn.Module`` (its own source, in its own package) is saved with
its weights beside it.
"""

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
MODEL_SOURCE = textwrap.dedent(
    '''
    """A tiny classifier: the code a real model ships with."""
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self, features=4, hidden=8, classes=3):
            super().__init__()
            self.hidden = nn.Linear(features, hidden)
            self.out = nn.Linear(hidden, classes)
            self.register_buffer("temperature", torch.tensor(2.0))

        def forward(self, x):
            logits = self.out(torch.relu(self.hidden(x)))
            return torch.softmax(logits / self.temperature, dim=-1)
    '''
)
#: Top-level packages the demo writes; the loading process must not find them.
DEMO_PACKAGES = ("hermetic_demo_pipeline", "hermetic_demo_model")


def build_package(workdir: Path) -> tuple[Path, bool]:
    """Create the demo package in *workdir*/demo.pt; return it and whether it has
    the torch model (only when torch is importable)."""
    from hermetic import PackageExporter

    source_root = workdir / "src"
    _write_sources(source_root)
    sys.path.insert(0, str(source_root))
    try:
        importlib.invalidate_caches()
        model = importlib.import_module("hermetic_demo_pipeline.model")
        net = _tiny_net()
        config_json = json.dumps(CONFIG)
        archive = workdir / "demo.pt"
        with PackageExporter(archive) as exporter:
            exporter.intern("hermetic_demo_pipeline.**")
            exporter.save_text("pipeline", "config.json", config_json)
            exporter.save_pickle(
                "pipeline", "pipeline.pkl", model.Pipeline(config_json)
            )
            if net is not None:
                exporter.intern("hermetic_demo_model.**")
                exporter.save_pickle("model", "net.pkl", net)
        return archive, net is not None
    finally:
        sys.path.remove(str(source_root))
        for name in [n for n in sys.modules if n.startswith(DEMO_PACKAGES)]:
            del sys.modules[name]


def _write_sources(source_root: Path) -> None:
    package = source_root / "hermetic_demo_pipeline"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(PIPELINE_SOURCE)
    (package / "features.py").write_text(FEATURES_SOURCE)
    model_package = source_root / "hermetic_demo_model"
    model_package.mkdir(parents=True, exist_ok=True)
    (model_package / "__init__.py").write_text("")
    (model_package / "net.py").write_text(MODEL_SOURCE)


def _tiny_net() -> object | None:
    """Return the demo's TinyNet with fixed weights, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    net_module = importlib.import_module("hermetic_demo_model.net")
    torch.manual_seed(0)
    return net_module.TinyNet().eval()  # type: ignore[no-any-return]
