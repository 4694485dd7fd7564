"""``python -m lstmkit.engines.csrc [-v]``: build the compiled engine now and report the time."""

from lstmkit.engines.compiled import main

main()
