"""libopus through ctypes, for what FFmpeg's wrapper does not pass on: the
DTX encoder control and decoding a lost frame from the next packet's
in-band FEC.  Uses the libopus PyAV ships (``av.libs``), else the system's.
Only the handful of calls these need."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import struct

import numpy as np

from mediacore.errors import MissingDependencyError, ParameterError

# opus_defines.h
OPUS_APPLICATION = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
SET_BITRATE, SET_VBR, SET_COMPLEXITY, SET_INBAND_FEC, SET_PACKET_LOSS_PERC, SET_DTX = 4002, 4006, 4010, 4012, 4014, 4016
GET_LOOKAHEAD = 4027
MAX_PACKET = 1500

_lib: ctypes.CDLL | None = None


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    import av

    candidates = sorted(glob.glob(os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs", "libopus*.so*")))
    system = ctypes.util.find_library("opus")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError:
            continue
    else:
        raise MissingDependencyError("OpusEncoder: dtx=True needs libopus (bundled with PyAV wheels or installed "
                                     "system-wide); none was found")
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encoder_destroy.restype = None
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int,
                                      ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int32]
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    _lib = lib
    return lib


class LibOpus:
    """One libopus encoder state."""

    def __init__(self, owner: str, rate: int, channels: int, application: str, settings: dict[int, int]) -> None:
        lib = _load()
        self._lib = lib
        self.owner = owner
        self.channels = channels
        err = ctypes.c_int()
        self._enc = lib.opus_encoder_create(rate, channels, OPUS_APPLICATION[application], ctypes.byref(err))
        if err.value != 0 or not self._enc:
            raise ParameterError(f"{owner}: libopus rejects {rate} Hz x {channels}: {self._error(err.value)}")
        for request, value in settings.items():
            rc = lib.opus_encoder_ctl(ctypes.c_void_p(self._enc), ctypes.c_int(request), ctypes.c_int(int(value)))
            if rc != 0:
                raise ParameterError(f"{owner}: libopus rejects control {request}={value}: {self._error(rc)}")
        look = ctypes.c_int()
        lib.opus_encoder_ctl(ctypes.c_void_p(self._enc), ctypes.c_int(GET_LOOKAHEAD), ctypes.byref(look))
        self.lookahead = int(look.value)
        self._buf = (ctypes.c_ubyte * MAX_PACKET)()

    def _error(self, code: int) -> str:
        return self._lib.opus_strerror(code).decode()

    def encode(self, x: np.ndarray) -> bytes:
        """float32 (channels, frame) -> one Opus packet."""
        inter = np.ascontiguousarray(x.T, dtype=np.float32)
        pcm = inter.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        n = self._lib.opus_encode_float(ctypes.c_void_p(self._enc), pcm, x.shape[1], self._buf, MAX_PACKET)
        if n < 0:
            raise ParameterError(f"{self.owner}: libopus cannot encode a frame of {x.shape[1]}: {self._error(n)}")
        return bytes(self._buf[:n])

    def close(self) -> None:
        if self._enc:
            self._lib.opus_encoder_destroy(ctypes.c_void_p(self._enc))
            self._enc = None

    def __del__(self) -> None:
        self.close()


def opus_head(channels: int, pre_skip: int, input_rate: int) -> bytes:
    """The OpusHead identification header (RFC 7845), as FFmpeg's extradata."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


class LibOpusDecoder:
    """One libopus decoder state; ``decode(data, fec=True)`` recovers the frame
    *before* ``data`` from its in-band FEC (LBRR), which FFmpeg cannot."""

    def __init__(self, rate: int, channels: int) -> None:
        lib = _load()
        if not getattr(lib, "_decoder_typed", False):
            lib.opus_decoder_create.restype = ctypes.c_void_p
            lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
            lib.opus_decoder_destroy.restype = None
            lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
            lib.opus_decode_float.restype = ctypes.c_int
            lib.opus_decode_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int32,
                                              ctypes.POINTER(ctypes.c_float), ctypes.c_int, ctypes.c_int]
            lib._decoder_typed = True
        self._lib = lib
        self.channels = channels
        err = ctypes.c_int()
        self._dec = lib.opus_decoder_create(rate, channels, ctypes.byref(err))
        if err.value != 0 or not self._dec:
            raise ParameterError(f"LibOpusDecoder: libopus rejects {rate} Hz x {channels}")

    def decode(self, data: bytes | None, frame_size: int, *, fec: bool = False) -> np.ndarray:
        """float32 (channels, frame_size); ``data=None`` conceals a lost frame (PLC)."""
        pcm = np.zeros(frame_size * self.channels, np.float32)
        if data is None:
            buf, n = None, 0
        else:
            buf, n = (ctypes.c_ubyte * len(data)).from_buffer_copy(data), len(data)
        got = self._lib.opus_decode_float(ctypes.c_void_p(self._dec), buf, n,
                                          pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), frame_size, int(fec))
        if got < 0:
            raise ParameterError(f"LibOpusDecoder: libopus cannot decode: {self._lib.opus_strerror(got).decode()}")
        return pcm[: got * self.channels].reshape(got, self.channels).T.copy()

    def close(self) -> None:
        if self._dec:
            self._lib.opus_decoder_destroy(ctypes.c_void_p(self._dec))
            self._dec = None

    def __del__(self) -> None:
        self.close()
