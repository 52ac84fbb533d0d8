"""The HTTP library the installed openai SDK talks through: httpx2 for openai >= 3, httpx before.
The Azure management client and the emulator's transport must use the same one."""

from __future__ import annotations

import openai


def http_module():
    """httpx2 for openai >= 3 (its default client), httpx before."""
    if int(openai.__version__.split(".")[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx
