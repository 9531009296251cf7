"""The part of SDP (RFC 8866) an RTP audio relay needs: one audio m-line, its rtpmap and fmtp.

Written for the SDP that ``ffmpeg -f rtp -sdp_file``, mediasoup PlainTransport
consumers and Janus ``rtp_forward`` produce: a session-level or media-level
``c=`` line, an ``m=audio PORT RTP/AVP PT...`` line, ``a=rtpmap`` and
``a=fmtp`` per payload type, optional ``a=rtcp`` and ``a=rtcp-mux``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import FormatError


@dataclass
class AudioDescription:
    """One audio stream of an SDP."""

    address: str
    port: int
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int
    fmtp: dict[str, str] = field(default_factory=dict)
    rtcp_port: int | None = None
    rtcp_mux: bool = False

    @property
    def stereo(self) -> bool:
        """Whether the sender sends stereo Opus (RFC 7587: ``sprop-stereo=1``; absent means mono)."""
        return self.fmtp.get("sprop-stereo", self.fmtp.get("stereo", "0")) == "1"

    def to_sdp(self, *, session_name: str = "mediacore relay") -> str:
        ip = "IP6" if ":" in self.address else "IP4"
        lines = ["v=0", f"o=- 0 0 IN {ip} {self.address}", f"s={session_name}", f"c=IN {ip} {self.address}",
                 "t=0 0", f"m=audio {self.port} RTP/AVP {self.payload_type}",
                 f"a=rtpmap:{self.payload_type} {self.encoding}/{self.clock_rate}/{self.channels}"]
        if self.fmtp:
            params = ";".join(f"{k}={v}" for k, v in self.fmtp.items())
            lines.append(f"a=fmtp:{self.payload_type} {params}")
        if self.rtcp_mux:
            lines.append("a=rtcp-mux")
        return "\r\n".join(lines) + "\r\n"


def parse_sdp(text: str, *, encoding: str = "opus") -> AudioDescription:
    """The first audio m-line's first payload type of ``encoding`` (case-insensitive).

    Raises FormatError naming what is missing (no audio m-line, no connection
    address, no rtpmap for the encoding ...).
    """
    session_addr: str | None = None
    media: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 4:
                raise FormatError(f"SDP: expected 'm=<media> <port> <proto> <fmt>...', got {line!r}")
            media.append({"media": parts[0], "port": parts[1], "proto": parts[2], "fmts": parts[3:],
                          "addr": None, "rtpmap": {}, "fmtp": {}, "rtcp": None, "mux": False})
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3:
                raise FormatError(f"SDP: expected 'c=IN IP4 <address>', got {line!r}")
            addr = parts[2].split("/")[0]  # multicast TTL suffix
            if media:
                media[-1]["addr"] = addr
            else:
                session_addr = addr
        elif kind == "a" and media:
            m = media[-1]
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                pt, _, spec = rest.partition(" ")
                m["rtpmap"][pt.strip()] = spec.strip()
            elif name == "fmtp":
                pt, _, params = rest.partition(" ")
                m["fmtp"][pt.strip()] = dict(
                    (kv.split("=", 1) + [""])[:2] for kv in (p.strip() for p in params.split(";")) if kv)
            elif name == "rtcp":
                m["rtcp"] = rest.split()[0] if rest.split() else None
            elif name == "rtcp-mux":
                m["mux"] = True
    audio = [m for m in media if m["media"] == "audio"]
    if not audio:
        raise FormatError(f"SDP: expected an 'm=audio' line, got media {[m['media'] for m in media]}")
    m = audio[0]
    addr = m["addr"] or session_addr
    if addr is None:
        raise FormatError("SDP: expected a 'c=' connection address at session or media level, got none")
    try:
        port = int(m["port"].split("/")[0])
    except ValueError:
        raise FormatError(f"SDP: expected a numeric port in the m=audio line, got {m['port']!r}") from None
    for pt in m["fmts"]:
        spec = m["rtpmap"].get(pt)
        if spec is None:
            continue
        enc, _, rest = spec.partition("/")
        if enc.lower() != encoding.lower():
            continue
        rate, _, ch = rest.partition("/")
        try:
            return AudioDescription(address=addr, port=port, payload_type=int(pt), encoding=enc,
                                    clock_rate=int(rate), channels=int(ch or 1), fmtp=m["fmtp"].get(pt, {}),
                                    rtcp_port=int(m["rtcp"]) if m["rtcp"] else None, rtcp_mux=m["mux"])
        except ValueError:
            raise FormatError(f"SDP: expected 'a=rtpmap:{pt} {encoding}/<rate>[/<channels>]', got {spec!r}") from None
    found = {pt: m["rtpmap"].get(pt, "(no rtpmap)") for pt in m["fmts"]}
    raise FormatError(f"SDP: expected an {encoding} payload type in the audio m-line, got {found}")
