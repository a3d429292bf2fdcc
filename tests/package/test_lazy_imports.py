"""`import postal_sdk` loads only what a program uses: httpx and the clients on first use."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import postal_sdk

HEAVY = (
    "httpx",
    "httpcore",
    "anyio",
    "cattrs",
    "postal_sdk._async.client",
    "postal_sdk._sync.client",
    "postal_sdk._async.fanout",
    "postal_sdk._http.transport",
)


def loaded_after(program: str) -> set[str]:
    """The heavy modules in `sys.modules` after `program` runs in a fresh interpreter."""
    check = f"{program}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_importing_the_package_loads_no_http_stack_and_no_client() -> None:
    assert loaded_after("import postal_sdk") == set()


def test_messages_and_errors_come_without_the_http_stack() -> None:
    program = "from postal_sdk import Message, Attachment, PostalError, NoRecipients"
    assert loaded_after(program) == set()


def test_the_first_use_of_a_client_loads_it() -> None:
    assert {"httpx", "postal_sdk._async.client"} <= loaded_after(
        "from postal_sdk import AsyncPostal"
    )


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    for name, module in postal_sdk._LAZY.items():
        assert getattr(postal_sdk, name) is getattr(importlib.import_module(module), name)
    for name in postal_sdk.__all__:
        getattr(postal_sdk, name)


def test_lazy_table_type_checking_imports_and_all_agree() -> None:
    tree = ast.parse(Path(postal_sdk.__file__).read_text(encoding="utf-8"))
    [block] = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    for_type_checkers = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert for_type_checkers == postal_sdk._LAZY
    assert set(postal_sdk._LAZY) <= set(postal_sdk.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        postal_sdk.Nope  # noqa: B018 - the access is the test
    with pytest.raises(ImportError):
        exec("from postal_sdk import Nope")  # noqa: S102 - a fixed statement


def test_dir_lists_the_lazy_names_too() -> None:
    assert set(postal_sdk.__all__) <= set(dir(postal_sdk))
