"""Performance figures for the local stack, printed by ``make bench`` (``python -m benchmarks``).

Figures, never timed assertions (DESIGN "Testing"); pytest does not collect this package (testpaths = tests).
"""

import sys

from emulator.template import Template

# The shared layer is on sys.path in Lambda (/opt/python); here its source folder is, as in the local stack.
for _layer in map(str, Template.load().layer_paths()):
    if _layer not in sys.path:
        sys.path.insert(0, _layer)
