"""The demo behind ``make demo`` works without torch (the model part is skipped)."""

from __future__ import annotations

from helpers import block_imports_prelude, run_python


def test_demo_without_torch_packages_and_runs_the_pipeline_only():
    """With torch unimportable, the demo still packages and runs its pipeline."""
    output = run_python(
        block_imports_prelude("torch")
        + """
from hermetic.demo import main
main()
assert "torch" not in sys.modules
"""
    )
    assert "score('a tidy little package') = 0.852" in output
    assert "net(x)" not in output
    assert "hermetic_demo_model" not in output
