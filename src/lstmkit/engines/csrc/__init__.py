"""C++ sources of the compiled engine (``compiled.cpp``); ``python -m lstmkit.engines.csrc`` builds
the extension into its cache now (see :mod:`lstmkit.engines.compiled`)."""
