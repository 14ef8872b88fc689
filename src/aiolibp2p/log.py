"""The library's named loggers.  The library never configures logging (no handlers, no levels).

Hot paths check ``logger.isEnabledFor(level)`` before formatting, and use lazy ``%`` arguments.
"""

from __future__ import annotations

import logging

__all__ = ["connection_logger", "host_logger", "stream_logger", "transport_logger"]

host_logger = logging.getLogger("aiolibp2p.host")
connection_logger = logging.getLogger("aiolibp2p.connection")
stream_logger = logging.getLogger("aiolibp2p.stream")
transport_logger = logging.getLogger("aiolibp2p.transport")
