"""The engine stays importable without the UI: import-linter's contract from pyproject.toml."""

from importlinter.cli import lint_imports


def test_import_contracts_are_kept():
    assert lint_imports(no_cache=True) == 0
