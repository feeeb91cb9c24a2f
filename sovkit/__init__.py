"""sovkit: a sovereign AI cloud deployment kit. One stack file per site; everything else is rendered from it."""

__version__ = "0.1.0"
