"""Stands first on PYTHONPATH in the fast tier's child processes (tests/conftest.py): importing
torch there fails, naming the rule, instead of silently costing seconds."""

raise ModuleNotFoundError(
    "the fast tier must not import torch (tests/no_torch): mark the test slow", name="torch"
)
