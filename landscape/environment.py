"""What a run was computed with: code version and software, recorded in every run file."""
from __future__ import annotations

import platform
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from . import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the landscape checkout this code runs from ('' when not in a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def describe(device: torch.device) -> dict[str, str | int]:
    info: dict[str, str | int] = {
        "landscape": __version__,
        "git": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
