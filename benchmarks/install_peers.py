"""Install the ``bench`` extra of pyproject.toml one requirement at a time.

``make bench`` first installs the whole extra in one pip call; when that fails (say the pinned
torch wheel is unavailable for this platform) it runs this script, so that one peer that cannot
be installed leaves out only itself. The runner then notes every peer that does not import.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def bench_requirements() -> list[str]:
    text = PYPROJECT.read_text()
    try:
        import tomllib
        return list(tomllib.loads(text)["project"]["optional-dependencies"]["bench"])
    except ImportError:  # Python 3.10: read the one line
        m = re.search(r"^bench\s*=\s*\[(.*?)\]", text, re.M | re.S)
        return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def main() -> None:
    failed = []
    for req in bench_requirements():
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", req])
        if proc.returncode != 0:
            failed.append(req)
    for req in failed:
        print(f"note: could not install {req}; the benchmarks leave it out", file=sys.stderr)


if __name__ == "__main__":
    main()
