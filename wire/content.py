"""Content decoding (pure): a body's Content-Encoding undone read by read. The probe sees
when decoded bytes arrive (a compressor that holds data delivers none); the clients read a
compressed stream as a browser would (they accept gzip, deflate and br, as httpx does).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from errors import ProtocolError

COMPRESSIONS = {"gzip", "x-gzip", "deflate", "br", "zstd", "compress", "x-compress"}


class ContentDecoder:
    """Undo Content-Encoding incrementally: gzip, deflate (zlib or raw), br (if the brotli
    module is installed), identity. `unsupported` names an encoding it cannot undo."""

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        self.encoding = ", ".join(codings)
        self.compressing = any(c in COMPRESSIONS for c in codings)
        self.unsupported: str | None = None
        self._decode: Callable[[bytes], bytes] = lambda data: data
        self._flush: Callable[[], bytes] = lambda: b""
        self._pending = b""  # deflate: bytes held until the zlib header can be recognised
        if len(codings) > 1:
            self.unsupported = self.encoding
        elif codings:
            self._choose(codings[0])

    def _choose(self, coding: str) -> None:
        if coding in ("gzip", "x-gzip"):
            self._use_zlib(zlib.decompressobj(wbits=31))
        elif coding == "deflate":
            self._decode = self._deflate_start
        elif coding == "br":
            try:
                import brotli
            except ImportError:
                self.unsupported = "br"
                return
            decoder = brotli.Decompressor()
            self._decode = decoder.process
        else:
            self.unsupported = coding

    def _use_zlib(self, obj: Any) -> None:
        self._decode = obj.decompress
        self._flush = obj.flush

    def _deflate_start(self, data: bytes) -> bytes:
        self._pending += data
        if len(self._pending) < 2:
            return b""
        cmf, flg = self._pending[0], self._pending[1]
        zlib_wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
        self._use_zlib(zlib.decompressobj(wbits=15 if zlib_wrapped else -15))
        pending, self._pending = self._pending, b""
        return self._decode(pending)

    def feed(self, data: bytes) -> bytes:
        if self.unsupported:
            return b""
        try:
            return self._decode(data)
        except Exception as exc:  # zlib.error, brotli.error
            raise ProtocolError(f"the {self.encoding} body does not decode: {exc}") from exc

    def close(self) -> bytes:
        if self.unsupported:
            return b""
        try:
            return self._flush()
        except zlib.error as exc:
            raise ProtocolError(f"the {self.encoding} body does not decode: {exc}") from exc
