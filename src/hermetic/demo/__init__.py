"""The built-in example behind ``make demo`` and ``hermetic demo``.

It packages a tiny text-scoring pipeline (its own module, a config and a pickled object
that uses both) and, when torch is importable, a small ``nn.Module`` with its weights;
then loads them in a fresh interpreter where their source is not importable, runs
them on fixed inputs, and prints the results and the archive's file tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

__all__ = ["main", "run_demo"]

_LOADER = textwrap.dedent(
    """
    import sys
    HIDDEN = ("hermetic_demo_pipeline", "hermetic_demo_model")
    class _NoDemoSource:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in HIDDEN:
                raise ModuleNotFoundError(name, name=name)
    sys.meta_path.insert(0, _NoDemoSource())
    from hermetic import PackageImporter
    importer = PackageImporter(sys.argv[1])
    pipeline = importer.load_pickle("pipeline", "pipeline.pkl")
    config = importer.load_text("pipeline", "config.json")
    print("loaded", type(pipeline).__module__ + "." + type(pipeline).__qualname__)
    print("config", config.strip())
    for text in ("a tidy little package", "ship the code with the model"):
        print(f"score({text!r}) = {pipeline(text):.3f}")
    if sys.argv[2] == "with-model":
        import torch
        net = importer.load_pickle("model", "net.pkl")
        x = torch.linspace(-1.0, 1.0, 8).reshape(2, 4)
        with torch.no_grad():
            probabilities = net(x)
        print("loaded", type(net).__module__ + "." + type(net).__qualname__)
        print("parameters", sum(p.numel() for p in net.parameters()))
        for row in probabilities.tolist():
            print("net(x) =", "[" + ", ".join(f"{p:.4f}" for p in row) + "]")
    """
)


def run_demo(workdir: Path) -> str:
    """Build the demo package in *workdir*, load it in a fresh process, report."""
    from .build import build_package

    archive, with_model = build_package(workdir)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    mode = "with-model" if with_model else "pipeline-only"
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _LOADER, str(archive), mode],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"loading the demo package failed:\n{result.stderr}")
    from hermetic import PackageImporter

    with PackageImporter(archive) as importer:
        tree = (
            str(importer.file_structure())
            if hasattr(importer, "file_structure")
            else ""
        )
    return f"archive: {archive}\n{result.stdout}\n{tree}"


def main() -> int:
    """Run the demo in a temporary folder and print what it shows."""
    with tempfile.TemporaryDirectory(prefix="hermetic-demo-") as tmp:
        print(run_demo(Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
