"""Loading diffusers pipelines for the backends: device and dtype, offline detection, quiet loading.

Loads go through :data:`~costroute.generators.pipeline_cache` (see the backends); the
functions here do the loading itself. Importing this module does not import torch or
diffusers.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

#: Pipeline components that ``DiffusersGenerator(components=...)`` can replace, and their diffusers class.
_COMPONENT_CLASSES = {"unet": "UNet2DConditionModel", "transformer": "PixArtTransformer2DModel", "vae": "AutoencoderKL"}

_TRUE = frozenset({"1", "ON", "YES", "TRUE"})


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------------------- the local Hugging Face cache
def _cached_file(repo: str, filename: str) -> str | None:
    """Path of ``filename`` of hub repo ``repo`` in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    try:
        path = try_to_load_from_cache(repo, filename)
    except Exception:
        return None
    return path if isinstance(path, str) and os.path.isfile(path) else None


def _hub_cache_folder(model: str) -> str | None:
    """Snapshot folder of pipeline ``model`` in the local Hugging Face cache, if its configs are there."""
    path = _cached_file(model, "model_index.json")
    return os.path.dirname(path) if path else None


def _in_hub_cache(repo: str, component: str | None = None) -> bool:
    """Whether the local Hugging Face cache holds ``repo``'s configs (a pipeline, or one component)."""
    if component is None:
        return _hub_cache_folder(repo) is not None
    return any(_cached_file(repo, name) for name in (f"{component}/config.json", "config.json"))


def hub_offline() -> bool:
    """Whether Hugging Face hub access is switched off (``HF_HUB_OFFLINE``, read now and at hub import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


# A failed probe is remembered this long, so that a batch of generators does not probe each time.
_PROBE_TIMEOUT_S = 3.0
_PROBE_MEMORY_S = 30.0
_probe_lock = threading.Lock()
_probe_failed: tuple[float, OSError] | None = None
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_unreachable() -> OSError | None:
    """Why the Hugging Face hub cannot be reached right now, or None if it can (or a proxy decides).

    One TCP connection to the hub's endpoint (``HF_ENDPOINT``), at most 3 s: without it,
    ``huggingface_hub`` retries each missing file five times with backoff (about 30 s per
    model) before it gives up on an offline machine. A failure is remembered for 30 s. With a
    proxy configured in the environment the probe is skipped (the proxy decides what is
    reachable), and so is every error other than a failed connection.
    """
    global _probe_failed
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    try:
        from huggingface_hub import constants

        endpoint = str(constants.ENDPOINT)
    except (ImportError, AttributeError):  # pragma: no cover
        endpoint = "https://huggingface.co"
    parts = urllib.parse.urlsplit(endpoint)
    if not parts.hostname:
        return None
    port = parts.port or (80 if parts.scheme == "http" else 443)
    with _probe_lock:
        if _probe_failed is not None and time.monotonic() - _probe_failed[0] < _PROBE_MEMORY_S:
            return _probe_failed[1]
        try:
            with socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S):
                pass
        except OSError as exc:
            error = OSError(f"cannot reach {parts.scheme}://{parts.hostname}:{port}: {exc}")
            _probe_failed = (time.monotonic(), error)
            return error
        _probe_failed = None
        return None


def _check_reachable(uncached: list[str]) -> None:
    """Fail fast when hub ids are not cached and cannot be downloaded (offline, or the hub unreachable)."""
    if not uncached:
        return
    if hub_offline():
        raise not_cached_error(uncached, offline=True)
    unreachable = hub_unreachable()
    if unreachable is not None:
        raise not_cached_error(uncached, offline=False, cause=unreachable)


def check_hub_sources(repos: Sequence[str]) -> None:
    """Raise the not-cached ``OSError`` at once when hub ids whose configs are not cached cannot be downloaded.

    For the scorers' models (a ``config.json`` at the repo's root): with ``HF_HUB_OFFLINE`` set,
    or the hub unreachable (:func:`hub_unreachable`), the error comes in seconds instead of
    after the hub client's retries. Cached ids and local folders pass.
    """
    _check_reachable([r for r in dict.fromkeys(repos) if not _cached_file(r, "config.json")])


def _hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):  # pragma: no cover
        return "the Hugging Face cache"


def not_cached_error(repos: Sequence[str], offline: bool, cause: BaseException | None = None) -> OSError:
    """The error for hub ids whose weights are not in the local cache while they cannot be downloaded."""
    shown = ", ".join(repr(r) for r in repos)
    if offline:
        why = "HF_HUB_OFFLINE is set, so nothing can be downloaded"
    else:
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else "no network access?"
        if len(detail) > 300:
            detail = detail[:297] + "..."
        why = f"downloading them failed ({detail})"
    return OSError(
        f"the weights of {shown} are not in the local Hugging Face cache ({_hub_cache_dir()}) and {why}. "
        f"Download them on a machine with network access (`hf download {repos[0]}`, then copy the cache to this "
        "machine's HF_HOME), or save the pipeline there with DiffusionPipeline.from_pretrained(...)"
        ".save_pretrained(folder), copy the folder here and pass it as the model (a local folder loads offline)"
    )


# ----------------------------------------------------------------------------- quiet loading
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple | None = None


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Switch off diffusers' and transformers' own progress bars while a pipeline loads or saves.

    Those are the "Loading pipeline components", "Loading weights" and "Writing model
    shards" bars; the hub's download bars are left as they were (a multi-gigabyte
    download deserves one). The previous settings are restored when the last of
    concurrent loads ends.
    """
    global _quiet_depth, _quiet_saved
    try:
        import huggingface_hub.utils as hub
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover
        yield
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = (
                diffusers_logging.is_progress_bar_enabled(),
                transformers_logging.is_progress_bar_enabled(),
                hub.are_progress_bars_disabled(),
            )
            diffusers_logging.disable_progress_bar()
            transformers_logging.disable_progress_bar()  # also switches the hub's bars off: put them back
            if not _quiet_saved[2]:
                hub.enable_progress_bars()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                diffusers_on, transformers_on, hub_off = _quiet_saved
                if diffusers_on:
                    diffusers_logging.enable_progress_bar()
                if transformers_on:
                    transformers_logging.enable_progress_bar()
                if hub_off:
                    hub.disable_progress_bars()
                _quiet_saved = None


# ----------------------------------------------------------------------------- known library notices
#: Beginnings of the library log messages that :func:`known_notices_filtered` drops: notices
#: about optional packages costroute does not need, and the tokenizer's and CLIP's notices on
#: long prompts (the pipelines truncate them to the text encoder's length on purpose).
KNOWN_NOTICES = (
    "`CLIPImageProcessor` requires torchvision",
    "`SiglipImageProcessor` requires torchvision",
    "`Siglip2ImageProcessor` requires torchvision",
    "Cannot initialize model with low cpu memory usage because `accelerate` was not found",
    "The following part of your input was truncated because CLIP can only handle sequences up to",
    "Token indices sequence length is longer than the specified maximum sequence length for this model",
)


class _KnownNoticeFilter(logging.Filter):
    """Drops the records whose message starts with one of :data:`KNOWN_NOTICES` (never an error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to judge
            return True
        return not message.lstrip().startswith(KNOWN_NOTICES)


_notice_filter = _KnownNoticeFilter()
_notice_lock = threading.Lock()
_notice_depth = 0
_notice_targets: list = []


def _notice_filter_targets() -> list:
    """The library loggers and their handlers (where their records are printed) to filter."""
    targets: list = []
    for name in ("transformers", "diffusers"):
        try:  # sets up the library's root logger and handler, which it otherwise does on first use
            __import__(f"{name}.utils.logging", fromlist=["get_logger"]).get_logger(name)
        except ImportError:  # pragma: no cover
            continue
        logger = logging.getLogger(name)
        targets.append(logger)
        targets.extend(logger.handlers)
    return targets


@contextlib.contextmanager
def known_notices_filtered() -> Iterator[None]:
    """Drop transformers' and diffusers' known, harmless notices (:data:`KNOWN_NOTICES`) for a while.

    "`CLIPImageProcessor` requires torchvision", "Cannot initialize model with low cpu memory
    usage because `accelerate` was not found ..." and "The following part of your input was
    truncated because CLIP can only handle sequences up to 77 tokens" are printed on every
    load or long prompt and drown costroute's own lines. A filter on the libraries' loggers
    and handlers drops exactly those messages (errors and every other message pass) while a
    load or a call runs; it is removed when the last of concurrent uses ends.
    """
    global _notice_depth, _notice_targets
    with _notice_lock:
        if _notice_depth == 0:
            _notice_targets = _notice_filter_targets()
            for target in _notice_targets:
                target.addFilter(_notice_filter)
        _notice_depth += 1
    try:
        yield
    finally:
        with _notice_lock:
            _notice_depth -= 1
            if _notice_depth == 0:
                for target in _notice_targets:
                    target.removeFilter(_notice_filter)
                _notice_targets = []


# ----------------------------------------------------------------------------- device, dtype
def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    return "float16" if device.startswith("cuda") else "float32"


def _dtype_kwargs(dtype: str, load_kwargs: Mapping) -> dict:
    """``{"dtype": ...}`` for diffusers that renamed ``torch_dtype`` (0.36+), else ``{"torch_dtype": ...}``."""
    if "dtype" in load_kwargs or "torch_dtype" in load_kwargs:
        return {}
    import torch

    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return {"torch_dtype": getattr(torch, dtype)}
    return {"dtype": getattr(torch, dtype)}


# ----------------------------------------------------------------------------- loading
def _is_hub_id(source: str) -> bool:
    """Whether ``source`` names a hub repo (the specs make every local path absolute)."""
    return not os.path.isabs(source) and not os.path.isdir(source)


def _uncached(model: str, components: Mapping[str, str]) -> list[str]:
    """The hub ids among ``model`` and ``components`` whose configs are not in the local cache."""
    out = []
    if _is_hub_id(model) and not _in_hub_cache(model):
        out.append(model)
    for key, source in components.items():
        if _is_hub_id(source) and not _in_hub_cache(source, key):
            out.append(source)
    return out


def _load_failed(model: str, where: str, dtype: str, uncached: list[str], exc: BaseException) -> OSError:
    """The error of a failed load: not cached (when that is why), else what the loader said."""
    offline = hub_offline()
    if uncached:
        return not_cached_error(uncached, offline, exc)
    hint = (
        " (HF_HUB_OFFLINE is set: the local cache may hold only part of the model; download it again on a "
        "machine with network access)"
        if offline and where == "hub id"
        else ""
    )
    return OSError(f"could not load the diffusers pipeline {model!r} ({where}, dtype={dtype}): {exc}{hint}")


def _load_pipeline(model: str, dtype: str, device: str, components: Mapping[str, str], load_kwargs: Mapping) -> Any:
    """Load a text-to-image pipeline (with component replacements), its per-step bars off."""
    uncached = _uncached(model, components)
    _check_reachable(uncached)  # cannot work: say so before spending seconds importing and retrying
    with known_notices_filtered():
        return _load_pipeline_now(model, dtype, device, components, load_kwargs, uncached)


def _load_pipeline_now(
    model: str, dtype: str, device: str, components: Mapping[str, str], load_kwargs: Mapping, uncached: list[str]
) -> Any:
    import diffusers

    kwargs = {**_dtype_kwargs(dtype, load_kwargs), **load_kwargs}
    local = not _is_hub_id(model)
    try:
        with quiet_loading():
            for key, source in components.items():
                cls = getattr(diffusers, _COMPONENT_CLASSES[key])
                sub = key if os.path.isdir(os.path.join(source, key)) else None
                kwargs[key] = cls.from_pretrained(
                    source, subfolder=sub, local_files_only=os.path.isdir(source), **_dtype_kwargs(dtype, load_kwargs)
                )
            if local:
                kwargs["local_files_only"] = True
                class_name = _read_json(os.path.join(model, "model_index.json")).get("_class_name")
                pipeline_class = getattr(diffusers, class_name, None) if class_name else None
                pipeline_class = pipeline_class or diffusers.AutoPipelineForText2Image
            else:
                pipeline_class = diffusers.AutoPipelineForText2Image
            pipe = pipeline_class.from_pretrained(model, **kwargs)
    except Exception as exc:
        if uncached or isinstance(exc, (OSError, ValueError)):
            raise _load_failed(model, "local folder" if local else "hub id", dtype, uncached, exc) from exc
        raise
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_any_pipeline(model: str, dtype: str, device: str, load_kwargs: Mapping) -> Any:
    """Load any diffusers pipeline (a DeepFloyd IF stage) through ``DiffusionPipeline``, its bars off."""
    uncached = _uncached(model, {})
    _check_reachable(uncached)
    with known_notices_filtered():
        return _load_any_pipeline_now(model, dtype, device, load_kwargs, uncached)


def _load_any_pipeline_now(model: str, dtype: str, device: str, load_kwargs: Mapping, uncached: list[str]) -> Any:
    import diffusers

    kwargs = {**_dtype_kwargs(dtype, load_kwargs), **load_kwargs}
    local = not _is_hub_id(model)
    if local:
        kwargs["local_files_only"] = True
    try:
        with quiet_loading():
            pipe = diffusers.DiffusionPipeline.from_pretrained(model, **kwargs)
    except Exception as exc:
        if uncached or isinstance(exc, (OSError, ValueError)):
            raise _load_failed(model, "local folder" if local else "hub id", dtype, uncached, exc) from exc
        raise
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pipeline_view(pipe: Any, scheduler: Any) -> Any:
    """A new pipeline object sharing ``pipe``'s modules (no copy, no dtype change) with its own scheduler.

    Scheduler objects are stateful (``set_timesteps``); giving every call a fresh one keeps
    the cached pipeline untouched for the other specs that share it. Its per-step progress
    bar is off.
    """
    cls = type(pipe)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {key: module for key, module in pipe.components.items() if key in params}
    kwargs["scheduler"] = scheduler
    for key, value in pipe.config.items():
        if key in params and key not in kwargs and not key.startswith("_"):
            kwargs[key] = value
    view = cls(**kwargs)
    view.set_progress_bar_config(disable=True)
    return view
