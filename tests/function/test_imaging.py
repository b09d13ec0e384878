"""Decoding: every promised format and colour mode becomes RGB at the manifest's size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from postergenre import imaging
from tests.helpers.images import poster

SPEC = imaging.InputSpec(48, 32, "bilinear")


def _mean(pixels: np.ndarray) -> np.ndarray:
    assert pixels.shape == (1, 48, 32, 3) and pixels.dtype == np.float32
    return pixels[0].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats(fmt):
    r, g, b = _mean(imaging.decode(poster("Red", fmt=fmt), SPEC))
    assert r > 150 and g < 90 and b < 90


@pytest.mark.parametrize("mode", ["L", "1", "P", "RGBA", "LA", "CMYK", "F"])
def test_modes_become_rgb(mode):
    image = Image.new("RGB", (40, 60), (200, 200, 200)).convert(mode)
    fmt = {"CMYK": "JPEG", "F": "TIFF"}.get(mode, "PNG")
    out = io.BytesIO()
    image.save(out, fmt)
    mean = _mean(imaging.decode(out.getvalue(), SPEC))
    assert np.all(np.abs(mean - mean.mean()) < 8), mean  # grey stays grey
    assert mean.mean() > (150 if mode != "1" else 200)


def test_sixteen_bit_scaled_not_clipped():
    image = Image.fromarray(np.full((60, 40), 32768, np.uint16))  # mid-grey in 16 bits
    out = io.BytesIO()
    image.save(out, "PNG")
    assert 120 < _mean(imaging.decode(out.getvalue(), SPEC)).mean() < 136


def test_transparency_composited_over_white():
    out = io.BytesIO()
    Image.new("RGBA", (40, 60), (255, 0, 0, 0)).save(out, "PNG")
    assert _mean(imaging.decode(out.getvalue(), SPEC)).min() > 250
    palette = Image.new("P", (40, 60), 0)
    palette.putpalette([0, 0, 0] * 256)
    out = io.BytesIO()
    palette.save(out, "PNG", transparency=0)
    assert _mean(imaging.decode(out.getvalue(), SPEC)).min() > 250


def test_gif_first_frame():
    frames = [Image.new("RGB", (40, 60), c) for c in ((220, 20, 20), (20, 30, 220))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    r, _, b = _mean(imaging.decode(out.getvalue(), SPEC))
    assert r > 150 and b < 90


def test_exif_orientation_applied():
    image = Image.new("RGB", (120, 80), (220, 20, 20))
    image.paste((20, 30, 220), (60, 0, 120, 80))  # stored: left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: left becomes top
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    pixels = imaging.decode(out.getvalue(), SPEC)[0]
    top, bottom = pixels[:20].reshape(-1, 3).mean(0), pixels[-20:].reshape(-1, 3).mean(0)
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_large_jpeg_uses_draft_and_matches_full_decode():
    big = poster("Green", size=(3000, 4500), quality=90)
    draft = imaging.decode(big, SPEC)
    full = np.asarray(Image.open(io.BytesIO(big)).convert("RGB").resize((32, 48), Image.Resampling.BILINEAR), np.float32)
    assert np.abs(draft[0] - full).mean() < 6


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_body"),
        (b"hello", "not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not_an_image"),
    ],
)
def test_rejections(data, code):
    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(data, SPEC)
    assert err.value.code == code


def test_unsupported_format_rejected():
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "ICO")
    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(out.getvalue(), SPEC)
    assert err.value.code == "unsupported_format"


def test_pixel_limit():
    out = io.BytesIO()
    Image.new("L", (3000, 3000)).save(out, "PNG")
    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(out.getvalue(), SPEC, imaging.Limits(max_bytes=1_000_000))
    assert err.value.code == "too_many_pixels"


def test_alpha_flattened_at_target_size_matches_full_size_composite():
    image = Image.new("RGBA", (600, 900), (200, 30, 30, 0))
    image.paste((20, 30, 220, 255), (0, 0, 300, 900))
    image.paste((20, 200, 30, 100), (300, 0, 600, 450))
    out = io.BytesIO()
    image.save(out, "PNG")
    full = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    expected = np.asarray(full.resize((32, 48), Image.Resampling.BILINEAR), np.float32)
    diff = np.abs(imaging.decode(out.getvalue(), SPEC)[0] - expected)
    assert diff.max() <= 4 and diff.mean() < 0.5  # 8-bit premultiplication rounding only


def test_sixteen_bit_scaled_without_full_size_float_copies():
    out = io.BytesIO()
    Image.new("I;16", (3000, 2000), 65535 // 2).save(out, "PNG")
    assert np.abs(imaging.decode(out.getvalue(), SPEC)[0] - 128).max() <= 1


def test_extreme_aspect_ratio_reduced_before_resize():
    out = io.BytesIO()
    Image.new("RGB", (1, 2_000_000), (20, 200, 30)).save(out, "PNG")
    r, g, b = _mean(imaging.decode(out.getvalue(), SPEC))
    assert g > 190 and r < 30


def test_limit_applies_to_the_draft_decoded_size():
    big = poster("Blue", size=(6000, 9000), quality=80)
    limits = imaging.Limits(max_bytes=40 * 1024 * 1024)  # far less than 54 MP at full size
    image, cost, _ = imaging.plan(big, SPEC, limits)
    assert image.size == (750, 1125) and cost < limits.max_bytes
    assert _mean(imaging.decode(big, SPEC, limits))[2] > 150
    png = poster("Blue", size=(3000, 4500), fmt="PNG")
    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(png, SPEC, limits)
    assert err.value.code == "too_many_pixels"


def test_progressive_jpeg_costs_its_coefficients():
    baseline = poster("Red", size=(4000, 6000), quality=80)
    progressive = poster("Red", size=(4000, 6000), quality=80, progressive=True)
    assert imaging.plan(progressive, SPEC)[1] > imaging.plan(baseline, SPEC)[1] + 4000 * 6000


def test_scan_cap_and_cpu_deadline():
    from tests.helpers.images import many_scans_jpeg

    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(many_scans_jpeg(101, size=(600, 900)), SPEC)
    assert err.value.code == "too_many_scans"
    assert imaging.decode(many_scans_jpeg(60, size=(600, 900)), SPEC).shape == (1, 48, 32, 3)
    with pytest.raises(imaging.ImageError) as err:
        imaging.decode(many_scans_jpeg(3000), SPEC, imaging.Limits(cpu_seconds=0.5, max_jpeg_scans=10**6))
    assert err.value.code == "image_too_complex"
