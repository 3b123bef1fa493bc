"""Every test process (and every process it starts) runs the app on devhost's embedded backends
unless a test configures Azure's: bootstrap reads this setting, as devhost sets it for its own."""

from __future__ import annotations

import os

from devhost.embedded.backends import LOCAL_BACKENDS

os.environ.setdefault("OUTERPARK_LOCAL_BACKENDS", LOCAL_BACKENDS)
