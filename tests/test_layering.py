"""The layers: orchestrator -> selfsup -> masking -> samdata, and only orchestrator imports Ray or MLflow.

Each package's modules are all imported in a fresh interpreter, which then reports which of the
packages it must not use were loaded (by any module, directly or through another). A lazy import
inside a function (e.g. a CLI's) is not seen: only what importing the package's code loads.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "samdata": ("ray", "mlflow", "torch", "masking", "selfsup", "orchestrator"),
    "masking": ("ray", "mlflow", "selfsup", "orchestrator"),
    "selfsup": ("ray", "mlflow", "orchestrator"),
}

PROBE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names))
print(" ".join(sorted(p for p in sys.argv[2:] if p in sys.modules)))
"""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_loads_nothing_from_the_layers_above_it_nor_ray_or_mlflow(package):
    run = subprocess.run([sys.executable, "-c", PROBE, package, *FORBIDDEN[package]], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    count, loaded = (run.stdout.splitlines() + [""])[:2]
    assert int(count) >= 5, f"{package}: only {count} modules found"
    assert loaded == "", f"importing {package}'s modules loaded {loaded}"


RAY_WORKER_MODULES = ("orchestrator.region_stage", "orchestrator.readable_images")
"""The modules that define what the region stage's Ray tasks and actors run (decode tasks, masker
actors, readability checks): each of their worker processes imports the module first."""


def test_the_region_stages_ray_workers_load_neither_torch_nor_selfsup():
    """A Ray worker imports the module of the function or class it runs. Those of the region stage
    must not load torch, selfsup, MLflow or the sweep's config (pydantic, every method): seconds per
    worker process, paid again for every region store of every sweep, and a CPU masker needs none."""
    probe = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\n"
    probe += "print(' '.join(sorted(m for m in ('torch', 'selfsup', 'mlflow', 'orchestrator.config') if m in sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe, *RAY_WORKER_MODULES], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "", f"importing {', '.join(RAY_WORKER_MODULES)} loaded {run.stdout.strip()}"
