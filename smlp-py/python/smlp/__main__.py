"""``python -m smlp`` (and the ``smlp`` script of the package): the smlp command line.

The same tool as the Rust binary, from the same code: ``python -m smlp --help``.
"""

from __future__ import annotations

import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line on ``argv`` (default: ``sys.argv[1:]``); returns its exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not hasattr(_native, "run_cli"):
        print(
            "error: this build of smlp has no command line (built without the `cli` feature): "
            "install the smlp binary, or the wheel of `cargo xtask wheel`",
            file=sys.stderr,
        )
        return 2
    return _native.run_cli(["smlp", *args], [sys.executable, "-m", "smlp"])


if __name__ == "__main__":
    sys.exit(main())
