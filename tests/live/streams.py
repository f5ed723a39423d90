"""Test helper: serve a video file as a live loopback network stream with ffmpeg.

``ffmpeg -re`` reads the clip at its own frame rate and writes MPEG-4 part 2 video in an MPEG-TS container to
``tcp://127.0.0.1:PORT?listen=1``: ffmpeg is the server, bound to the loopback interface only, and the reader
(``cv2.VideoCapture("tcp://127.0.0.1:PORT")``) connects to it. Why this transport:

- TCP listen mode: the stream starts when the reader connects (no frames lost before it), and killing the
  server closes the connection, so the reader sees the end at once (UDP would only time out).
- MPEG-TS + ``mpeg4``: the encoder is in every ffmpeg build, and OpenCV's FFmpeg backend opens the stream in
  about 0.2 s (an H.264 stream needs about 1 s of probing).

The server takes one reader; restart :func:`serve_stream` on the same port to bring a dropped stream back.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = ["ServedStream", "StreamServerError", "free_port", "have_ffmpeg", "serve_stream"]

HOST = "127.0.0.1"


class StreamServerError(RuntimeError):
    """ffmpeg could not start serving the stream."""


class ServedStream(NamedTuple):
    """What :func:`serve_stream` yields; unpacks as ``url, stop``.

    Attributes:
        url: ``tcp://127.0.0.1:PORT`` for ``cv2.VideoCapture``.
        stop: kills the server now (drops the stream mid-run); safe to call twice.
    """

    url: str
    stop: Callable[[], None]

    @property
    def port(self) -> int:
        """The TCP port (to serve again on the same address)."""
        return int(self.url.rsplit(":", 1)[1])


def have_ffmpeg() -> bool:
    """Whether an ``ffmpeg`` executable is on PATH."""
    return shutil.which("ffmpeg") is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool | None:
    """Whether something listens on 127.0.0.1:``port`` (Linux ``/proc/net/tcp``); ``None`` when unknown.

    Connecting to find out is not an option: the server takes one client only.
    """
    table = Path("/proc/net/tcp")
    if not table.exists():
        return None
    suffix = f":{port:04X}"
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].endswith(suffix) and fields[3] == "0A":  # 0A: TCP_LISTEN
            return True
    return False


@contextlib.contextmanager
def serve_stream(
    video_path: str | Path,
    port: int | None = None,
    *,
    duration: float | None = None,
    loop: bool = True,
    startup_timeout: float = 10.0,
) -> Iterator[ServedStream]:
    """Serve ``video_path`` at its frame rate on ``tcp://127.0.0.1:PORT`` (MPEG-TS, MPEG-4 video, no audio).

    Args:
        video_path: the clip to stream.
        port: TCP port on 127.0.0.1 (``None``: a free one).
        duration: stop the stream after this many seconds of video (``None``: no limit).
        loop: repeat the clip forever.
        startup_timeout: seconds to wait for ffmpeg to listen.

    Yields:
        ``(url, stop)``; the server is killed when the block ends.

    Raises:
        StreamServerError: ffmpeg is missing, exited early, or did not listen in time.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise StreamServerError("ffmpeg is not on PATH (apt-get install -y ffmpeg)")
    port = free_port() if port is None else port
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", str(video_path)]
    if duration is not None:
        cmd += ["-t", f"{duration:g}"]
    cmd += ["-an", "-c:v", "mpeg4", "-q:v", "5", "-g", "25", "-f", "mpegts", f"tcp://{HOST}:{port}?listen=1"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)

        def stop() -> None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

        def failure(why: str) -> StreamServerError:
            stop()
            log.seek(0)
            detail = log.read().decode(errors="replace").strip().replace("\n", " | ")
            return StreamServerError(f"ffmpeg {why} serving {video_path} on port {port}: {detail or 'no output'}")

        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if process.poll() is not None:
                    raise failure(f"exited with {process.returncode}")
                state = _listening(port)
                if state is None:  # no /proc: give ffmpeg a moment
                    time.sleep(0.5)
                    break
                if state:
                    break
                if time.monotonic() > deadline:
                    raise failure(f"did not listen within {startup_timeout:g} s")
                time.sleep(0.02)
            yield ServedStream(f"tcp://{HOST}:{port}", stop)
        finally:
            stop()
