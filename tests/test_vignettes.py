"""Execute every vignette (vignettes/*.ipynb) top to bottom, so the worked analyses can never go stale.

Each notebook runs in a fresh kernel of the current interpreter with the working directory set to vignettes/, the
repository root first on PYTHONPATH (the kernel imports this checkout's ``balance``, not another install), and one
OpenMP thread. The kernel keeps Jupyter's inline matplotlib backend (no display needed), so the test also checks
that every notebook that draws shows its figures inline. A cell that raises fails the test with its traceback.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VIGNETTES = ROOT / "vignettes"
NOTEBOOKS = sorted(VIGNETTES.glob("*.ipynb"))

nbformat = pytest.importorskip("nbformat", reason="vignette tests need nbformat (pip install '.[test]')")
nbclient = pytest.importorskip("nbclient", reason="vignette tests need nbclient (pip install '.[test]')")
pytest.importorskip("ipykernel", reason="vignette tests need ipykernel (pip install '.[test]')")


class _KernelEnv:
    """Set the environment variables the kernel inherits, restoring them afterwards."""

    def __init__(self, **values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _kernel_manager():
    """A kernel of this very interpreter, whatever kernels are registered on the machine."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class _ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="this interpreter", language="python")

    return KernelManager(kernel_name="this-interpreter", kernel_spec_manager=_ThisInterpreter())


def test_vignettes_exist():
    assert NOTEBOOKS, f"no notebooks found in {VIGNETTES}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_vignette_runs(path):
    nb = nbformat.read(path, as_version=4)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    client = nbclient.NotebookClient(nb, km=_kernel_manager(), timeout=300,
                                     resources={"metadata": {"path": str(VIGNETTES)}})
    # One OpenMP thread: scikit-learn's gradient boosting (vignette 04) otherwise spin-waits on a loaded machine and
    # ran 20x slower in one measurement; single-threaded it is as fast as the threaded run on an idle one.
    with _KernelEnv(PYTHONPATH=pythonpath, MPLBACKEND="module://matplotlib_inline.backend_inline",
                    OMP_NUM_THREADS="1"):
        client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors}"
    draws = any("_plot(" in cell.source for cell in nb.cells if cell.cell_type == "code")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images or not draws, f"{path.name} draws plots but shows none inline"
