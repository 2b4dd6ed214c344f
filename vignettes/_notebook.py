"""Writing a vignette notebook from a script's list of cells (the make_*.py scripts)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def write_notebook(cells, path):
    """Write ``cells``, a list of ("md" or "code", source) pairs, as a notebook without outputs to ``path``."""
    made = []
    for k, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{k:02d}"
        made.append(cell)
    nb = new_notebook(cells=made, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    nbformat.write(nb, path)
