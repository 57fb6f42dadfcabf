"""The local stack: runs template.yaml on this machine with moto, no AWS account and no Docker."""

import sys
from pathlib import Path

# The functions' shared layer is importable here, as it is in Lambda (/opt/python): the gateway issues and
# verifies tokens with the layer's own code, so the local stack and the functions agree on what a token is.
_SHARED_LAYER = str(Path(__file__).resolve().parents[1] / "layers" / "shared")
if _SHARED_LAYER not in sys.path:
    sys.path.append(_SHARED_LAYER)
