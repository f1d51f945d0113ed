"""Pixels of ``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` ↔ uint8 RGB arrays.

Decoding accepts the encodings cameras publish for colour and grey images
(:data:`RAW_ENCODINGS`) and JPEG / PNG payloads (decoded with Pillow), up to
:data:`MAX_IMAGE_PIXELS`; every failure is a :class:`~robo_reward.errors.MalformedMessage`
saying what is wrong with the message, its ``reason`` the check that failed: ``encoding``,
``size``, ``too_large``, ``step`` or ``data_length`` for a raw image; ``empty``, ``format``,
``too_large`` or ``corrupt`` for a compressed one.
"""

from __future__ import annotations

import io

import numpy as np

from robo_reward.errors import InputError, MalformedMessage

#: encoding → (channels, bytes per channel)
RAW_ENCODINGS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}
COMPRESSED_FORMATS = ("jpeg", "png")
#: Most pixels of an image that decodes (2**25: 8K UHD fits); a larger one, raw or as a
#: compressed file's header claims it, is refused before any pixel is decoded.
MAX_IMAGE_PIXELS = 1 << 25


def raw_to_rgb(height: int, width: int, encoding: str, is_bigendian: int, step: int, data: bytes) -> np.ndarray:
    """Raw image fields → uint8 RGB (height, width, 3).

    ``mono16`` is scaled to 8 bits (65535 → 255); alpha is dropped; row padding beyond
    ``width`` pixels is ignored. ``data`` must hold exactly ``step · height`` bytes, as
    cv_bridge requires.
    """
    if encoding not in RAW_ENCODINGS:
        raise MalformedMessage(f"unsupported image encoding '{encoding}' (supported: {', '.join(RAW_ENCODINGS)})",
                               "encoding")
    channels, depth = RAW_ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise MalformedMessage(f"empty image {width}x{height}", "size")
    if height * width > MAX_IMAGE_PIXELS:
        raise MalformedMessage(f"{encoding} image {width}x{height}: more than {MAX_IMAGE_PIXELS} pixels", "too_large")
    row = width * channels * depth
    if step < row:
        raise MalformedMessage(f"{encoding} image {width}x{height}: step {step} < {row} bytes per row", "step")
    if len(data) != step * height:
        raise MalformedMessage(
            f"{encoding} image {width}x{height}: {len(data)} bytes of data, expected step·height = {step * height}",
            "data_length",
        )
    rows = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row]
    if depth == 2:
        dtype = ">u2" if is_bigendian else "<u2"
        grey16 = np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(np.float32)
        pixels = np.rint(grey16 / 257.0).astype(np.uint8)[..., None]
    else:
        pixels = rows.reshape(height, width, channels)
    if encoding.startswith("bgr"):
        pixels = pixels[..., 2::-1]
    elif channels == 4:
        pixels = pixels[..., :3]
    elif channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def compressed_to_rgb(fmt: str, data: bytes) -> np.ndarray:
    """A JPEG or PNG payload → uint8 RGB (H, W, 3); grey, palette and alpha images are converted."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise MalformedMessage(f"compressed image ({fmt or 'no format'}): empty payload", "empty")
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            if image.format is None or image.format.lower() not in COMPRESSED_FORMATS:
                raise MalformedMessage(f"compressed image: {image.format} payload, expected JPEG or PNG", "format")
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise MalformedMessage(f"compressed image ({image.format} {width}x{height}): more than "
                                       f"{MAX_IMAGE_PIXELS} pixels", "too_large")
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except MalformedMessage:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, in Image.open, for sizes far above ours
        raise MalformedMessage(f"compressed image ({fmt or 'no format'}, {len(data)} bytes): {exc}",
                               "too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MalformedMessage(f"compressed image ({fmt or 'no format'}, {len(data)} bytes): not decodable ({exc})",
                               "corrupt") from exc


def rgb_to_raw(rgb: np.ndarray, encoding: str = "rgb8") -> tuple[int, int, int, bytes]:
    """uint8 RGB (H, W, 3) → ``(height, width, step, data)`` in ``encoding`` (little-endian)."""
    if encoding not in RAW_ENCODINGS:
        raise InputError(f"unsupported image encoding '{encoding}' (supported: {', '.join(RAW_ENCODINGS)})")
    rgb = _check_rgb(rgb)
    height, width, _ = rgb.shape
    if encoding == "mono8":
        pixels = _grey(rgb).astype(np.uint8)
    elif encoding == "mono16":
        pixels = (np.rint(_grey(rgb)).astype(np.uint16) * 257).astype("<u2")
    else:
        pixels = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
        if encoding in ("rgba8", "bgra8"):
            pixels = np.concatenate([pixels, np.full((height, width, 1), 255, np.uint8)], axis=2)
    data = np.ascontiguousarray(pixels).tobytes()
    return height, width, len(data) // height, data


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """uint8 RGB (H, W, 3) → a JPEG (``quality`` 1–95) or PNG file's bytes."""
    from PIL import Image

    if fmt not in COMPRESSED_FORMATS:
        raise InputError(f"unsupported compressed format '{fmt}' (supported: {', '.join(COMPRESSED_FORMATS)})")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "jpeg" else {}
    Image.fromarray(_check_rgb(rgb)).save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of uint8 RGB, float64 (H, W) in [0, 255]."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
