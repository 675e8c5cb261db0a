"""Part (i) of ``python -m ser.bench ckpt=RUN``: ``ser.serve`` under load, on 127.0.0.1.

A real server process (``python -m ser.serve``) takes ``streams`` WebSocket streams at once,
each sending 16-bit PCM in hop-sized frames at real time for ``seconds``, while ``uploads``
recordings are posted to ``/predict`` from two threads (a 503 is retried after its
``Retry-After``, as a client should) and ``GET /health`` is asked every 0.1 s. Measured on the
client side: per hop, the time from sending the frame that completes it to receiving its
result; per upload, the request's round trip (retries included); per ``/health``, its round
trip. The server's resident memory is sampled every 0.1 s: after warming up, its peak, and
settled (2 s after the load ends). Checked: every stream gets exactly its own hops (each
stream sends the speech from another starting point, and every result must equal what
``ser.listen``'s loop gives on that stream's own audio, computed here afterwards), no honest
request fails, and the settled memory is within ``rss_growth_mib`` of the start.

Beside those honest clients, a :class:`Hostile` load (the requests that took the server down
before its limits): tiny WAVs whose header says 1 Hz, an hour of silence as a 181-KB FLAC,
streams sending 1-MB frames, streams asking for one-sample hops, sockets that send nothing,
a crowd of streams beyond the cap, and a burst of recordings as long as the server takes
(``max_seconds``: the most work one upload may ask for). Each hostile request must get an
answer (a result, a 4xx or 503) or a close code, never a 5xx or a dead server; what each got
is counted in the report.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ser.bench.hostile_clients import Hostile, hostile_threads
from ser.bench.load_report import LoadReport
from ser.errors import SerError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start_server(model: str | Path, port: int, timeout_s: float = 120, args: tuple[str, ...] = (),
                 root: str | Path | None = None) -> subprocess.Popen:
    """``python -m ser.serve ckpt=model port=port vad=none [args]`` in a child process, once
    /health answers (``root``: the checkout whose ``ser`` runs; this one by default). Without
    the speech gate every hop runs the network (the load measured is the model's), and each
    stream's hops can be checked against ``ser.listen``'s ungated loop."""
    import httpx

    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "ser.serve", f"ckpt={model}", f"port={port}",
                             "vad=none", *args],
                            env=env, cwd=str(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SerError(f"ser.serve stopped at start: {proc.stderr.read().decode()[-800:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SerError(f"ser.serve did not answer /health within {timeout_s:.0f} s.")


def _stream(url: str, index: int, audio: np.ndarray, rate: int, hop: int, window: int,
            report: LoadReport, levels: dict) -> None:
    """One real-time stream: a hop-sized frame every hop; after the first window each frame
    completes one hop, whose result is awaited before the next frame is due."""
    from websockets.sync.client import connect

    data = stream_audio(audio, index, rate)
    seen, times = [], []
    try:
        with connect(f"{url}/stream?rate={rate}&format=s16le", max_size=None) as ws:
            start = time.perf_counter()
            for i, at in enumerate(range(0, data.shape[0] - hop + 1, hop)):
                time.sleep(max(0.0, start + i * hop / rate - time.perf_counter()))
                sent = time.perf_counter()
                ws.send(data[at: at + hop].tobytes())
                if at + hop >= window:
                    message = ws.recv(timeout=30)
                    report.hop_ms.append(1000 * (time.perf_counter() - sent))
                    item = json.loads(message)
                    if "error" in item:
                        report.problems.append(f"stream {index}: {item['error']}")
                        return
                    seen.append(item["probabilities"])
                    times.append(item["time_s"])
    except Exception as exc:  # a closed or refused honest stream is a problem to report
        report.problems.append(f"stream {index}: {type(exc).__name__}: {exc}")
        return
    expected = [round((window + k * hop) / rate, 4) for k in range(len(times))]
    if times != expected:
        report.problems.append(f"stream {index} got hops at {times[:4]}..., expected {expected[:4]}...")
    levels[index] = seen


def stream_audio(audio: np.ndarray, index: int, rate: int) -> np.ndarray:
    """Stream ``index``'s int16 samples: the speech started 0.37·index s later (looped)."""
    x = np.roll(audio, -int(0.37 * index * rate))
    return (np.clip(0.5 * x / max(1e-6, float(np.abs(x).max())), -1, 1) * 32767).astype("<i2")


def check_streams(model: str | Path, audio: np.ndarray, rate: int, hop: int, window: int,
                  got: dict[int, list[dict]]) -> list[str]:
    """Problems where a stream's results differ from ``ser.listen``'s loop on its own audio."""
    from ser.inference.predictor import load_predictor
    from ser.inference.live import stream

    predictor, problems = load_predictor(model), []
    for index, results in sorted(got.items()):
        want: list[dict] = []
        x = stream_audio(audio, index, rate).astype(np.float32) / 32768.0
        stream(predictor, [x[: window + (len(results) - 1) * hop]], window, hop, want.append)
        gap = max((abs(r[c] - w["probabilities"][c]) for r, w in zip(results, want) for c in r),
                  default=0.0)
        if len(want) != len(results) or gap > 1e-3:
            problems.append(f"stream {index}: {len(results)} results, {len(want)} expected, "
                            f"largest difference {gap:.3g}: not its own hops")
    return problems


def _uploads(url: str, wav: Path, count: int, report: LoadReport) -> None:
    """``count`` uploads one after another; a 503 is retried after its Retry-After (up to 20
    times), as a client should."""
    import httpx

    body = wav.read_bytes()
    with httpx.Client(timeout=120) as client:
        for _ in range(count):
            t0 = time.perf_counter()
            for attempt in range(21):
                answer = client.post(f"{url}/predict", files={"file": ("speech.wav", body, "audio/wav")})
                if answer.status_code != 503:
                    break
                report.retried += attempt == 0
                time.sleep(min(5.0, float(answer.headers.get("retry-after", "1"))))
            report.upload_ms.append(1000 * (time.perf_counter() - t0))
            if answer.status_code != 200:
                report.problems.append(f"upload: {answer.status_code} {answer.text[:200]}")


def _health(url: str, stop: threading.Event, report: LoadReport) -> None:
    import httpx

    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                ok = client.get(f"{url}/health").status_code == 200
            except httpx.HTTPError as exc:
                ok = False
                report.problems.append(f"/health: {type(exc).__name__}")
            report.health_ms.append(1000 * (time.perf_counter() - t0))
            if not ok:
                report.problems.append("/health did not answer 200")
            stop.wait(0.1)


def _memory(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        rss = _rss_mib(pid)
        if rss == rss:
            peak[0] = max(peak[0], rss)
        stop.wait(0.1)


def serve_load(model: str | Path, speech: np.ndarray, rate: int, streams: int = 8,
               seconds: float = 60.0, uploads: int = 200, rss_growth_mib: float = 100.0,
               hostile: Hostile | None = Hostile(), root: str | Path | None = None,
               server_args: tuple[str, ...] | None = None) -> LoadReport:
    """Run the load described above against a fresh server; ``speech`` (T,) float32 at ``rate``
    Hz is looped to ``seconds`` for every stream (2 s of it is the upload). ``hostile=None``:
    the honest clients alone. ``root``/``server_args``: another checkout's server and its keys
    (by default this one's, with ``idle_s=`` from the plan)."""
    import soundfile as sf

    report = LoadReport()
    port = _free_port()
    if server_args is None:
        server_args = () if hostile is None else (f"idle_s={hostile.idle_s:g}",)
    proc = start_server(model, port, args=server_args, root=root)
    url = f"http://127.0.0.1:{port}"
    stop, peak = threading.Event(), [float("nan")]
    try:
        import httpx

        info = httpx.get(f"{url}/model", timeout=10).json()
        hop, window = int(round(info["hop_s"] * rate)), int(round(info["window_s"] * rate))
        if rate != info["sample_rate"]:
            raise SerError(f"give speech at the model's {info['sample_rate']} Hz, not {rate} Hz")
        audio = np.resize(speech.astype(np.float32), int(seconds * rate))
        with tempfile.TemporaryDirectory(prefix="ser-load-") as tmp:
            wav = Path(tmp) / "speech.wav"
            sf.write(wav, speech[: 2 * rate], rate, subtype="PCM_16")
            _uploads(url, wav, 3, LoadReport())  # warm-up: first requests load lazy modules
            report.rss_mib = (_rss_mib(proc.pid), float("nan"))
            peak[0] = report.rss_mib[0]
            watchers = [threading.Thread(target=_health, args=(url, stop, report)),
                        threading.Thread(target=_memory, args=(proc.pid, stop, peak))]
            levels: dict[int, list[dict]] = {}
            workers = [threading.Thread(target=_stream, args=(url.replace("http", "ws", 1), i, audio,
                                                             rate, hop, window, report, levels))
                       for i in range(streams)]
            workers += [threading.Thread(target=_uploads, args=(url, wav, n, report))
                        for n in (uploads // 2, uploads - uploads // 2)]
            attackers = []
            if hostile is not None:
                longest = info.get("limits", {}).get("max_seconds")  # this server's (an older one: none)
                full = io.BytesIO()
                if longest and hostile.full_files:
                    sf.write(full, np.resize(speech.astype(np.float32), int(longest * rate)), rate,
                             format="WAV", subtype="PCM_16")
                attackers = hostile_threads(url, hostile, report, full.getvalue())
            for w in watchers + workers:
                w.start()
            if attackers:
                time.sleep(1.0)  # the honest streams hold their places first
                crowd = attackers[len(attackers) - hostile.crowd:]
                for w in attackers[:len(attackers) - hostile.crowd]:
                    w.start()
                time.sleep(0.5)  # then the others, and the crowd last
                for w in crowd:
                    w.start()
            for w in workers + attackers:
                w.join(seconds + 600)
            time.sleep(2.0)  # settled: what the server keeps once the load has gone
            stop.set()
            for w in watchers:
                w.join(10)
        report.rss_mib = (report.rss_mib[0], _rss_mib(proc.pid))
        report.rss_peak_mib = peak[0]
        if len(levels) != streams:
            report.problems.append(f"{streams - len(levels)} stream(s) did not finish")
        report.problems += check_streams(model, audio, rate, hop, window, levels)
        if report.rss_mib[1] - report.rss_mib[0] > rss_growth_mib:
            report.problems.append(f"server memory grew {report.rss_mib[1] - report.rss_mib[0]:.0f} MiB")
        if proc.poll() is not None:
            report.problems.append("the server process died")
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return report
