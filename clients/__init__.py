"""Transport clients: one exchange logic per transport (`clients/<name>.py`), run by the
asyncio driver (`clients.asyncio_io`) and the blocking one (`clients.blocking_io`). The
transports themselves are registered in `transports.py`."""
