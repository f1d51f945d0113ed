"""Pixels of ``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` ↔ uint8 RGB arrays.

Decoding accepts the encodings cameras publish for colour and grey images
(:data:`RAW_ENCODINGS`) and JPEG / PNG payloads (decoded with Pillow); every failure is
an :class:`~robo_reward.errors.InputError` saying what is wrong with the message.
"""

from __future__ import annotations

import io

import numpy as np

from robo_reward.errors import InputError

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


def raw_to_rgb(height: int, width: int, encoding: str, is_bigendian: int, step: int, data: bytes) -> np.ndarray:
    """Raw image fields → uint8 RGB (height, width, 3).

    ``mono16`` is scaled to 8 bits (65535 → 255); alpha is dropped; row padding beyond
    ``width`` pixels is ignored.
    """
    if encoding not in RAW_ENCODINGS:
        raise InputError(f"unsupported image encoding '{encoding}' (supported: {', '.join(RAW_ENCODINGS)})")
    channels, depth = RAW_ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise InputError(f"empty image {width}x{height}")
    row = width * channels * depth
    if step < row:
        raise InputError(f"{encoding} image {width}x{height}: step {step} < {row} bytes per row")
    if len(data) < step * height:
        raise InputError(
            f"{encoding} image {width}x{height}: {len(data)} bytes of data, expected step·height = {step * height}"
        )
    rows = np.frombuffer(data, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row]
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
        raise InputError(f"compressed image ({fmt or 'no format'}): empty payload")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format is None or image.format.lower() not in COMPRESSED_FORMATS:
                raise InputError(f"compressed image: {image.format} payload, expected JPEG or PNG")
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"compressed image ({fmt or 'no format'}, {len(data)} bytes): not decodable ({exc})") from exc


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
