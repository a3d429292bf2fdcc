"""`postal_sdk.webhooks` needs the optional `cryptography`, and says so."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_missing_cryptography_asks_for_the_webhooks_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    for name in ("postal_sdk.webhooks", "postal_sdk.webhooks._keys"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    with pytest.raises(ImportError, match=r"pip install 'postal-sdk\[webhooks\]'") as caught:
        importlib.import_module("postal_sdk.webhooks")
    assert isinstance(caught.value.__cause__, ImportError)
