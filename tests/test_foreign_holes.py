"""The review's holes in opening models made elsewhere (diffusers folders, pytorch/examples state dicts) and in
our own files: each is one clear sentence (exit 2 at the command line), never a traceback, a hang or a giant
allocation. One test a hole."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from models.cli import main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> int:
    return main([str(a) for a in args])


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# One helper lists names in a sentence

def test_every_message_lists_names_through_one_helper(tmp_path, capsys):
    """A state dict of 40 unknown tensors, one with a newline in its name, is named in one line, a few names
    and a count; and the models package has one function that writes such lists, not one per module."""
    state = {f"layer{i}.weight": torch.zeros(1) for i in range(40)} | {"bad\nname": torch.zeros(1)}
    path = tmp_path / "unknown.pth"
    torch.save(state, path)
    assert cli("import", path, "--out", tmp_path / "x.safetensors", "--device", "cpu") == 2
    line = one_line_error(capsys, "'bad\\nname'", "and 38 more")
    assert line.count("'layer") == 2
    writers = [p for p in (ROOT / "models").rglob("*.py") if re.search(r'more" if len\(', p.read_text())]
    assert [p.name for p in writers] == ["core.py"], writers
