"""Faust codecs for table keys and values: orjson bytes on the changelog, objects in memory."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from streamcrm import state_codec


class Utf8Codec(codecs.Codec):
    """Table keys are customer ids: str in memory, UTF-8 on the wire (restores as str)."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.encode("utf-8") if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode("utf-8")


class CustomerStateCodec(codecs.Codec):
    """The compact JSON of :mod:`streamcrm.state_codec` (reads the plain form too)."""

    def _dumps(self, obj: Any) -> bytes:
        return state_codec.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return state_codec.decode(s)


def register() -> None:
    codecs.register("crm_utf8", Utf8Codec())
    codecs.register("crm_customer_v1", CustomerStateCodec())
