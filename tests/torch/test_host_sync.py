"""The host-synchronization guard itself: it flags each form it promises to, and only those."""

from __future__ import annotations

import pytest

from tests.torch.host_sync import source_syncs

FLAGGED = {
    "t.item()": ".item()",
    "t.tolist()": ".tolist()",
    "t.cpu()": ".cpu()",
    "t.numpy()": ".numpy()",
    "t.to('cpu')": ".to('cpu')",
    "t.to(device='cpu')": ".to('cpu')",
    "torch.nonzero(t)": "nonzero()",
    "t.nonzero()": "nonzero()",
    "torch.unique(t)": "unique()",
    "t.masked_select(m)": "masked_select()",
    "torch.bincount(t)": "bincount()",
    "torch.equal(a, b)": "equal()",
    "torch.repeat_interleave(a, r)": "repeat_interleave() without output_size",
    "bool((t > 0).all())": "bool() of a device value",
    "int(t.sum())": "int() of a device value",
    "float(torch.linalg.norm(t))": "float() of a device value",
}

CLEAN = [
    "int(d)",
    "float(alpha)",
    "bool(flag)",
    "int(t.shape[1])",
    "torch.repeat_interleave(a, r, output_size=n)",
    "t.to(device)",
    "(t > 0).all()",
    "torch.where(t > 0, t, 0)",
]


@pytest.mark.parametrize(("expression", "what"), sorted(FLAGGED.items()))
def test_each_form_is_flagged_with_its_place(expression: str, what: str) -> None:
    source = f"import torch\n\n\nclass K:\n    def step(self, t):\n        {expression}\n"
    found = source_syncs(source)
    assert len(found) == 1
    assert found[0].startswith("<source>:6: K.step: ") and what in found[0]


@pytest.mark.parametrize("expression", CLEAN)
def test_host_values_are_not_flagged(expression: str) -> None:
    assert source_syncs(f"def f(t, d, alpha, flag, a, r, n, device):\n    {expression}\n") == []


@pytest.mark.parametrize(
    "branch",
    ["if (t > 0).any():\n        pass", "while t.max() > 1:\n        pass",
     "x = 1 if torch.isfinite(t).all() else 0", "assert t.sum() > 0"],
)
def test_branches_on_device_values_are_flagged(branch: str) -> None:
    found = source_syncs(f"def f(t):\n    {branch}\n")
    assert found and all("branch on a device value" in f for f in found)


def test_branches_on_host_values_are_not_flagged() -> None:
    assert source_syncs("def f(t, k):\n    if k > 1 and t.ndim == 2:\n        pass\n") == []


def test_allow_list_exempts_a_qualified_function_only() -> None:
    source = (
        "class C:\n    def bits(self, t):\n        return t.cpu()\n\n\n"
        "def g(t):\n    return t.item()\n"
    )
    assert [f.split(": ")[1] for f in source_syncs(source)] == ["C.bits", "g"]
    assert [f.split(": ")[1] for f in source_syncs(source, allow={"C.bits"})] == ["g"]
    assert len(source_syncs(source, allow={"bits"})) == 2
