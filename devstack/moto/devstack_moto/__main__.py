"""``python -m devstack_moto <moto_server arguments>``."""

import sys

from . import install

install()

from moto.server import main  # noqa: E402  (after the fixes are in)

sys.exit(main())
