"""Spectrogram images of 1-s blocks, batched on the training device (the paper's pipeline, steps 4–7).

:class:`SpectrogramImage` is the pipeline training uses: the data module hands it raw (mixed)
blocks in ``on_after_batch_transfer`` and gets ImageNet-normalised images back, on the CPU or the
GPU, never touching disk. It is built from one module per step, each testable against the
paper's way of doing it (:mod:`ser.features.reference`):

    InfinityNorm -> StftDb -> JetColour -> Resize -> ImageNormalize
    (B, T) float -> (B, T) -> (B, 257, 259) [0, 1] -> (B, 4, 257, 259) uint8 RGBA
    -> (B, 4, 256, 256) uint8 -> (B, 3, 256, 256) float

Colouring into bytes and resizing bytes is both faster than float images and closer to the
reference, which also colours into bytes (imsave) and resizes bytes (PIL). On the CPU the
element-wise steps between the FFT and the resize (power, dB scaling, colour lookup) and the
normalisation run as numba kernels (:mod:`ser.features.fused`); the modules above remain the
definition they are tested against, and what a GPU runs.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ser.features import fused as fused_kernels
from ser.features.colour import JetColour
from ser.features.normalize import ImageNormalize
from ser.features.resize import Resize
from ser.features.scratch import Scratch, buffer, thread_scratch
from ser.features.reuse import ReusableBuffers
from ser.features.stft import InfinityNorm, StftDb, StftPower, exporting, periodic_hamming


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads (a new one after a fork: threads do not
    survive it)."""
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="ser-images")
        return _POOLS[key]


class SpectrogramImage(nn.Module):
    """Waveform blocks -> normalised spectrogram images: (B, T) float -> (B, 3, H, W) float.

    All numbers come from the config (defaults mirror ``conf/``): STFT ``n_fft``, ``win_length``,
    ``hop_length`` in samples, ``top_db`` and ``amin`` for the dB floor, ``image_size``
    (height, width) in pixels, ImageNet ``mean``/``std``, the matplotlib ``colormap``.
    ``sample_rate`` (Hz) is kept for axis labels; the image itself does not depend on it.

    On the CPU the batch is cut into chunks of ``chunk_size`` blocks, small enough for each
    chunk's intermediate images to stay in cache, and ``threads`` chunks are made at once
    (default: torch's intra-op thread count), each by one thread. Whole chunks per thread
    scale much better than splitting every small operation across threads, above all on a
    machine shared with data loader workers or other jobs. ``threads=1`` makes the chunks one
    after another with torch's usual intra-op threads. A GPU takes the whole batch at once.

    ``fused=True`` (the default) makes the CPU's element-wise passes with the numba kernels
    of :mod:`ser.features.fused`, about a quarter faster than the torch ops; if numba cannot
    compile them here, the torch ops run after one warning. GPUs always use the torch ops.

    ``compile=True`` hands the torch normalisation to ``torch.compile`` (it then unpacks the
    RGBA words into planar channels in one pass); the first batch waits a few seconds for the
    compiler, and where compiling fails (no C++ compiler) the eager code runs after a warning.
    On one CPU thread the compiled pass is about twice as fast as eager torch, but Inductor's
    CPU kernels run holding Python's GIL, so with two image threads they take turns, and the
    whole pipeline measured slower: on CPUs the numba kernels (which release the GIL) are the
    fast path. On the CPU the output batches are reused once the step that consumed them has
    let them go (:mod:`ser.features.reuse`).
    ``channels_last`` returns the images in channels-last memory order (same shape).
    The work always runs in float32, also under autocast.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 512, win_length: int = 256,
                 hop_length: int = 62, top_db: float = 80.0, amin: float = 1e-5,
                 image_size: Sequence[int] = (256, 256),
                 mean: Sequence[float] = (0.485, 0.456, 0.406),
                 std: Sequence[float] = (0.229, 0.224, 0.225), colormap: str = "jet",
                 chunk_size: int = 4, threads: int | None = None, compile: bool = False,
                 channels_last: bool = False, fused: bool = True) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.chunk_size = max(1, int(chunk_size))
        self.threads = None if threads is None else max(1, int(threads))
        self.channels_last = bool(channels_last)
        self.infinity_norm = InfinityNorm()
        self.stft_db = StftDb(n_fft, win_length, hop_length, top_db, amin)
        # the STFT of the traced form (:meth:`traced`); StftDb's own is faster when running
        self.stft_power = StftPower(n_fft, hop_length, periodic_hamming(win_length), "constant",
                                    descending=True)
        self.colour = JetColour(colormap)
        self.resize = Resize(self.image_size)
        self.normalise = ImageNormalize(mean, std)
        self.compiled = bool(compile)
        self.fused = bool(fused) and fused_kernels.available()
        # made on first use and never pickled (see __getstate__)
        self._compiled_normalise: Callable | None = None
        self._outputs = ReusableBuffers()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_compiled_normalise"], state["_outputs"] = None, ReusableBuffers()
        return state

    def _finish(self, rgba: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Resized RGBA bytes -> normalised images written into ``out``."""
        pixels = rgba.permute(0, 2, 3, 1)
        if (self._fusing(rgba) and rgba.dtype == torch.uint8 and rgba.shape[1] == 4
                and self.normalise.channels == 3 and pixels.is_contiguous()
                and out.is_contiguous() and out.dtype == torch.float32):
            if self._fast("fused", fused_kernels.normalise, pixels.numpy(),
                          self.normalise.byte_gain.view(-1).numpy(),
                          self.normalise.offset.view(-1).numpy(), out.numpy()):
                return out
        if self.compiled:
            if self._compiled_normalise is None:
                self._compiled_normalise = torch.compile(self._normalise_words)
            if self._fast("compiled", self._compiled_normalise, rgba, out):
                return out
        return self.normalise(rgba, out=out)

    def _normalise_words(self, rgba: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        words = rgba.permute(0, 2, 3, 1).contiguous().view(torch.int32).squeeze(-1)
        return self.normalise.from_rgba_words(words, out=out)

    def rgba(self, blocks: torch.Tensor) -> torch.Tensor:
        """Blocks (B, T) -> resized RGBA bytes (B, 4, H, W), channels-last, before normalising.

        ``rgba(blocks)[:, :3] / 255`` is the [0, 1] image the reference pipeline gives.
        """
        scratch = thread_scratch() if blocks.device.type == "cpu" else None
        gains = self.infinity_norm.gains(blocks)
        words = self._fused_words(blocks, scratch, gains) if self._fusing(blocks) else None
        if words is None:
            power = self.stft_db.power(blocks, scratch, gains=gains)
            rows = self.stft_db.levels(power, self.colour.levels, overwrite=True, scratch=scratch)
            words = self.colour.lookup(rows, out=buffer(scratch, "words", tuple(rows.shape),
                                                        torch.int32, rows.device))
        resized = self.resize(JetColour.as_rgba(words))
        return resized.clone() if resized.data_ptr() == words.data_ptr() else resized

    def _fusing(self, tensor: torch.Tensor) -> bool:
        return self.fused and tensor.device.type == "cpu"

    def _fused_words(self, blocks: torch.Tensor, scratch: Scratch | None, gains: torch.Tensor
                     ) -> torch.Tensor | None:
        """Colour words (B, F, frames) from the numba kernel; None if it cannot run here."""
        spectrum = torch.view_as_real(self.stft_db.spectrum(blocks, scratch, gains))
        batch, n_frames, n_freq, _ = spectrum.shape
        words = buffer(scratch, "words", (batch, n_freq, n_frames), torch.int32)
        power = buffer(scratch, "fused power", (n_frames * n_freq,))
        rows = buffer(scratch, "fused rows", (n_frames * n_freq,), torch.int32)
        table = self.colour.table.view(torch.int32).view(-1)
        done = self._fast("fused", fused_kernels.spectrum_words, spectrum.numpy(), table.numpy(),
                          self.stft_db.amin ** 2, self.stft_db.top_db_log, words.numpy(),
                          power.numpy(), rows.numpy())
        return words if done else None

    # the optional fast paths: the attribute that switches each on, and how to name it
    _FAST_PATHS = {"fused": ("The numba image kernels", "features.fused=false"),
                   "compiled": ("torch.compile of the normalisation", "features.compile=false")}

    def _fast(self, path: str, kernel: Callable, *args) -> bool:
        """Run a kernel of an optional fast path (``fused`` or ``compiled``). If it fails here
        (numba or Inductor cannot compile on this machine, and report it in many ways), warn
        once and switch the path off: the torch ops make the images from then on."""
        try:
            kernel(*args)
            return True
        except Exception as error:
            if getattr(self, path):
                setattr(self, path, False)
                what, setting = self._FAST_PATHS[path]
                warnings.warn(f"{what} could not run here ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]}); making images with torch "
                              f"ops instead. Set {setting} to skip the attempt.", stacklevel=3)
            return False

    def _make(self, blocks: torch.Tensor, out: torch.Tensor) -> None:
        self._finish(self.rgba(blocks), out)

    @torch.inference_mode(False)
    def _empty_images(self, batch: int, device: torch.device) -> torch.Tensor:
        # Made outside inference mode: pool threads (which are not in Lightning's test-time
        # inference mode) write into it, and in-place writes to inference tensors are refused.
        shape = (batch, self.normalise.channels, *self.image_size)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if device.type != "cpu":
            return torch.empty(shape, dtype=torch.float32, device=device,
                               memory_format=memory_format)
        # The last batches' buffers are written again once the step that used them has let
        # them go (ser.features.reuse): fresh 100 MB would be faulted in, zeroed, every batch.
        return self._outputs.get(shape, torch.float32, memory_format,
                                 lambda: self._new_cpu_images(shape))

    def _new_cpu_images(self, shape: tuple[int, ...]) -> torch.Tensor:
        # numpy asks Linux for transparent huge pages on large buffers; torch.empty does not,
        # and first-touch faults on 4 KiB pages of a batch's 100 MB of images are a large share
        # of the CPU time of making them (docs/speed.md).
        batch, channels, height, width = shape
        if self.channels_last:
            planes = np.empty((batch, height, width, channels), dtype=np.float32)
            return torch.from_numpy(planes).permute(0, 3, 1, 2)
        return torch.from_numpy(np.empty(shape, dtype=np.float32))

    def traced(self, blocks: torch.Tensor) -> torch.Tensor:
        """The same images in plain tensor ops (pad, conv1d, log, gather, matmul), which
        ``forward`` runs while ONNX export traces it: (B, T) -> (B, 3, H, W) float32.

        Zero-padded STFT power, highest bin first -> colour-table rows ``floor(levels · [0, 1]
        dB image)`` -> RGB bytes by gather -> PIL's resize as two matrix products, rounded to
        bytes after each pass -> ImageNet normalisation. Equal to the running path up to
        float32 rounding at the colour boundaries (tests/test_export.py measures it)."""
        s = self.stft_db
        log_power = torch.log(self.stft_power(self.infinity_norm(blocks)).clamp_min(s.amin ** 2))
        top = log_power.amax(dim=(1, 2), keepdim=True)
        bottom = torch.maximum(log_power.amin(dim=(1, 2), keepdim=True), top - s.top_db_log)
        span = top - bottom
        levels = self.colour.levels
        gain = torch.where(span > 0, levels / span.clamp_min(1e-30), torch.zeros_like(span))
        rows = torch.floor(((log_power - bottom) * gain).clamp(0.0, levels - 1)).long()
        rgb = self.colour.table[:, :3].float()[rows].permute(0, 3, 1, 2)    # (B, 3, F, frames) bytes
        rgb = self.resize.by_matrices(rgb)
        return rgb * self.normalise.byte_gain.view(1, 3, 1, 1) + self.normalise.offset.view(1, 3, 1, 1)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        if blocks.dim() != 2:
            raise ValueError(f"expected blocks of shape (B, T), got {tuple(blocks.shape)}")
        if exporting():
            return self.traced(blocks)
        # Images are inputs: no gradient flows through the (quantising) colour lookup. (Pool
        # threads do not share this thread's no_grad, hence the detach.)
        blocks = blocks.detach()
        with torch.no_grad(), torch.autocast(device_type=blocks.device.type, enabled=False):
            images = self._empty_images(blocks.shape[0], blocks.device)
            if blocks.shape[0] == 0:
                return images
            if blocks.device.type != "cpu":
                self._make(blocks, images)
                return images
            starts = range(0, blocks.shape[0], self.chunk_size)
            jobs = [(blocks[i:i + self.chunk_size], images[i:i + self.chunk_size]) for i in starts]
            workers = min(self.threads or torch.get_num_threads(), len(jobs))
            if workers <= 1 or jobs[0][0].shape[0] < self.chunk_size:
                for job in jobs:
                    self._make(*job)
                return images
            # This thread and workers - 1 pool threads take chunks from a shared queue (a thread
            # that gets less CPU simply takes fewer). Compiled kernels are made by this thread
            # on the first chunk, before the others start, so that two threads never compile
            # at once; a shorter last chunk (a new shape) is made here at the end.
            tail = [jobs.pop()] if jobs[-1][0].shape[0] < self.chunk_size else []
            first = jobs[:1] if self.compiled else []
            queue: SimpleQueue = SimpleQueue()
            for job in jobs[len(first):]:
                queue.put(job)
            # One thread per chunk, none inside an operation: torch's intra-op threads are set
            # to 1 meanwhile (threads started now inherit that), and restored afterwards.
            intra_op = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for job in first:
                    self._make(*job)
                pending = [_thread_pool(workers - 1).submit(self._drain, queue)
                           for _ in range(workers - 1)]
                self._drain(queue)
                for job in tail:
                    self._make(*job)
                for done in pending:
                    done.result()
            finally:
                torch.set_num_threads(intra_op)
            return images

    def _drain(self, queue: SimpleQueue) -> None:
        while True:
            try:
                job = queue.get_nowait()
            except Empty:
                return
            self._make(*job)
