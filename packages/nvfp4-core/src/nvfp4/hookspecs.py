"""The questions the core asks a plugin: one hook each.

A plugin is a module named by an entry point in the group ``nvfp4.backends``::

    [project.entry-points."nvfp4.backends"]
    mine = "my_pkg.plugin"

Loading is lazy (on the first call that needs backends) and idempotent. A
plugin that fails to import or whose hook raises is reported (a warning and
``nvfp4.plugin_errors()``) and the others keep working.
``NVFP4_DISABLED_PLUGINS=a,b`` skips plugins by entry-point name.
"""

from __future__ import annotations

import pluggy

PROJECT = "nvfp4"

#: Marks a hook specification (core side).
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a hook implementation (plugin side): ``@nvfp4.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def nvfp4_register_backends():
    """Which GEMM backends does this plugin offer?

    Return a list of ``nvfp4.Backend`` instances. Return them even when they
    cannot run here: their ``availability()`` says why, and users see it in
    ``nvfp4 backends``. Names must be unique across all plugins.
    """


@hookspec
def nvfp4_register_quantizers():
    """Which fast quantizers (``nvfp4.Quantizer``) does this plugin offer?

    ``nvfp4.quantize`` uses the available one of highest priority that supports
    the input; each must produce exactly the bytes of ``nvfp4.quantize_ref``.
    """
