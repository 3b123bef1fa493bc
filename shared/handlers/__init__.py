"""Use cases: one plain function per command or event. Dependencies arrive as parameters."""
