"""The server's typed config: the ``[serve]`` table of a preset plus CLI flags.

Limits exist so that one request can never take the server down: a body, image or caption
count over a limit is refused with a 4xx that names the limit before any model work is done.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmscale.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def httptools_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("httptools") is not None


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    """Interface to bind. Anything beyond loopback needs ``token`` (or ``insecure``)."""
    port: int = 8000
    """TCP port; 0 picks a free one."""
    server: str = "batched"
    """Which server from ``SERVERS``: ``batched`` (dynamic batching) or ``naive`` (one forward per request)."""
    max_batch: int = 32
    """Most requests that one forward pass takes (dynamic batching)."""
    max_wait_ms: float = 2.0
    """Longest a request waits for others to join its batch before the batch runs anyway."""
    max_queue: int = 512
    """Requests admitted but not yet answered; beyond this the server answers 503 at once."""
    max_queue_ms: float = 0.0
    """Bound on queueing in time: refuse (503) a request when the requests ahead of it would take
    longer than this to serve at the measured rate. 0: only the ``max_queue`` count bounds it."""
    prepare_ahead: bool = False
    """Decode and tokenize the next batch on a second thread (a side CUDA stream on GPU) while the
    current batch runs its forward. Off (default): one thread does both in turn, which served more
    requests/s on an H100 (see BENCHMARKS.md)."""
    retry_after_s: int = 1
    """Value of ``Retry-After`` on a 503 from a full queue."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted (413 ``max_body_bytes`` beyond it)."""
    max_image_pixels: int = 4096 * 4096
    """Largest image (width x height) accepted (413 ``max_image_pixels``); checked from the header."""
    max_captions: int = 16
    """Most captions in one ``/v1/match`` or ``/v1/embed/text`` request (400 ``max_captions``)."""
    max_caption_chars: int = 1000
    """Longest caption in characters (400 ``max_caption_chars``); tokens beyond the model's length are truncated."""
    max_text_tokens: int = 32
    """Tokens per caption fed to the model (captions are truncated to this)."""
    tokenizer: str = ""
    """tokenizer.json / vocab.txt (empty: ``$MMSCALE_TOKENIZER``, then the installed package)."""
    token: str | None = None
    """Bearer token required on ``/v1/*`` and ``/metrics``; None means no auth (loopback only)."""
    insecure: bool = False
    """Allow binding beyond loopback without a token."""
    device: str = "auto"
    """``auto`` (cuda when present), ``cpu`` or ``cuda``."""
    dtype: str = "auto"
    """``auto`` (bf16 on cuda, fp32 on cpu), ``float32`` or ``bfloat16``."""
    image_decode: str = "auto"
    """``auto`` (batched nvjpeg on cuda, else cpu), ``cpu`` or ``cuda``."""
    compile: bool = False
    """``torch.compile`` the forward with batches padded to power-of-two buckets (static shapes)."""
    cuda_graphs: bool = False
    """Record a CUDA graph per padded batch shape up to ``cuda_graph_max_batch`` and replay it instead
    of launching each kernel (the latency path at low concurrency). CUDA only: refused on CPU."""
    cuda_graph_max_batch: int = 128
    """Largest padded batch (images, and caption rows) that gets a CUDA graph; larger batches run eager.
    128: at c=256 batches of 64-96 are the common ones, and with batches cut to buckets
    (``trim_batches_above``) graphs to 128 served 1.18x and 1.35x what graphs to 64 did in two
    runs (H200, 8 front ends). 117 graphs take 4.55 GiB against 3.41 for 64's 95, and no longer to start (24 vs 28 s);
    256 took 6.72 GiB for 1.02x (BENCHMARKS.md, serving)."""
    trim_batches_above: int = 48
    """A batch of more than this many requests is cut to the largest padding bucket that fits
    (64 of 69 ready, not 69 padded to 96 rows); the rest stay first in the queue for the next
    batch. Smaller batches are launch-bound and cost about the same padded or not, so they are
    left whole. Padding to buckets happens on CUDA and with ``compile``; elsewhere this does
    nothing. 0: never cut. With graphs to 128 on an H200 at c=256, in one run: 48 served 4,450
    req/s, 32 served 4,130, no cut 4,012 (BENCHMARKS.md, serving)."""
    frontends: int = 1
    """HTTP front-end processes. 1: one process does HTTP and the model (the simplest path). N > 1:
    N processes share the listening socket and do HTTP, limits, image header checks, tokenization
    and JSON; they forward each request to the one model process, which batches across all of them."""
    shared_depth: bool = True
    """With front ends: the model process publishes its queue depth on a shared page and each front
    end refuses at ``max_queue`` before reading the body (``depth_board``). Off: only the model
    process applies the bound, after the front end has read, checked and tokenized the request
    (kept to measure the difference: H200, 8 front ends, 2x capacity, ``--max-queue 8``, admitted
    p99 22.7 ms without the page and 10.7 ms with it, two hosts of one kind; BENCHMARKS.md)."""
    cpu_threads: int = 0
    """torch intra-op threads on CPU; 0 keeps torch's default."""
    gil_switch_ms: float = 0.0
    """Python's thread switch interval in ms (0 keeps the default 5 ms); smaller lets the inference
    thread take the GIL back from the HTTP loop sooner. With 8 front ends at c=256 on an H200,
    0.5 and 0.1 ms changed throughput by 1.02x and 1.00x (BENCHMARKS.md): not a lever there."""
    http: str = "auto"
    """uvicorn's HTTP parser: ``auto`` (httptools when installed, else h11), ``httptools`` or ``h11``.
    h11 is pure Python and costs each request more front-end CPU, which under overload is the
    front ends' capacity to answer and refuse (BENCHMARKS.md, serving)."""
    drain_timeout_s: float = 30.0
    """On SIGTERM, how long in-flight requests may take to finish before the server exits anyway."""
    monitor_file: str | None = None
    """Hardware timeline of the server: a JSONL file (emptied at start) that gets one line per sample
    as it is taken (CPU of the server and its front ends, host CPU, RSS, free RAM, and per GPU
    utilization, SM clock, power, temperature, memory), so latency that rises under a steady load
    can be read against clocks and CPU. The sampler is a forked process stopped at shutdown, which
    prints one summary line. None: no monitor."""
    monitor_interval_s: float = 0.2
    """Seconds between the samples of ``monitor_file``. A line is about 170 bytes on a host without
    GPUs (more with each GPU): at 0.2 s the file grows about 75 MB a day there."""

    def http_parser(self) -> str:
        """The parser uvicorn will use: ``http`` with ``auto`` resolved the way uvicorn resolves it."""
        if self.http != "auto":
            return self.http
        return "httptools" if httptools_installed() else "h11"

    def validate(self) -> None:
        if self.server not in ("batched", "naive"):
            raise ConfigError("serve.server", f"must be 'batched' or 'naive', got {self.server!r}")
        for name in ("max_batch", "max_queue", "frontends", "cuda_graph_max_batch", "max_body_bytes",
                     "max_image_pixels", "max_captions", "max_caption_chars", "max_text_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.trim_batches_above < 0:
            raise ConfigError("serve.trim_batches_above", f"must be >= 0 (0: never cut), got {self.trim_batches_above}")
        for name in ("max_wait_ms", "max_queue_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"serve.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.monitor_interval_s <= 0:
            raise ConfigError("serve.monitor_interval_s", f"must be > 0 (no monitor: leave monitor_file "
                                                          f"unset), got {self.monitor_interval_s}")
        if self.monitor_file is not None and not self.monitor_file:
            raise ConfigError("serve.monitor_file", "must not be empty (leave it unset for no monitor)")
        if not 0 <= self.port <= 65535:
            raise ConfigError("serve.port", f"must be in 0..65535, got {self.port}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("serve.device", f"must be auto, cpu or cuda, got {self.device!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError("serve.dtype", f"must be auto, float32 or bfloat16, got {self.dtype!r}")
        if self.image_decode not in ("auto", "cpu", "cuda"):
            raise ConfigError("serve.image_decode", f"must be auto, cpu or cuda, got {self.image_decode!r}")
        if self.http not in ("auto", "httptools", "h11"):
            raise ConfigError("serve.http", f"must be auto, httptools or h11, got {self.http!r}")
        if self.http == "httptools" and not httptools_installed():
            raise ConfigError("serve.http", "httptools is not installed (pip install httptools), or use auto or h11")
        if self.token is not None and not self.token:
            raise ConfigError("serve.token", "must not be empty")
        if self.host not in LOOPBACK_HOSTS and not self.token and not self.insecure:
            raise ConfigError(
                "serve.host",
                f"binding {self.host} exposes the model beyond this machine: set --token "
                "(clients send 'Authorization: Bearer TOKEN') or pass --insecure",
            )
