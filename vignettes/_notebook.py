"""Write a vignette notebook from (kind, source) cells: the shared last step of the make_*.py scripts."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def write_notebook(cells, path):
    """Build a notebook from ``("md" | "code", source)`` pairs (stable cell ids) and write it to ``path``."""
    built = []
    for k, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{k:02d}"
        built.append(cell)
    nb = new_notebook(cells=built, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    nbformat.write(nb, path)
